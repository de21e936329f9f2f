#!/usr/bin/env bash
# `make install-gpu`: the project with every paper extra + gpu (deepspeed, vllm) into $VENV on a CUDA machine,
# keeping the torch the machine already has. Inputs (environment): PYTHON (interpreter that makes the venv), VENV,
# EXTRAS (extras besides gpu), HAS_GPU (1 when nvidia-smi lists a GPU), FORCE=1 (install without a GPU).
#
# - The venv is made with --system-site-packages when $PYTHON already imports torch (CUDA images ship it there),
#   so that torch is used, not a second copy.
# - torch is never installed or upgraded when one is importable: pip gets a constraint pinning the installed
#   version, so an extra that wants another torch (vllm pins one per release) stops pip with a resolver error
#   instead of silently replacing the CUDA build. Pick a vllm release built for your torch (vLLM's release notes
#   name it) and rerun with e.g. GPU_PIP_ARGS="vllm==0.10.1".
# - With no torch anywhere, pip installs the torch the gpu extra resolves to (vllm's pinned CUDA build).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-rldf,rllr,rlchf,pcrm,ser,api,dev}
PY=$VENV/bin/python

if [[ ${HAS_GPU:-} != 1 && ${FORCE:-} != 1 ]]; then
  echo "error: install-gpu needs a CUDA machine (nvidia-smi not found or lists no GPU); FORCE=1 installs anyway" >&2
  exit 2
fi
if [[ ! -x $PY ]]; then
  if $PYTHON -c "import torch" 2>/dev/null; then
    echo "install-gpu: $PYTHON has torch $($PYTHON -c 'import torch; print(torch.__version__)'); $VENV is made to use it"
    $PYTHON -m venv --system-site-packages "$VENV"
  else
    $PYTHON -m venv "$VENV"
  fi
fi
$PY -m pip install --quiet --upgrade pip
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
before=$($PY -c "import torch; print(torch.__version__)" 2>/dev/null || true)
if [[ -z $before ]] && $PYTHON -c "import torch" 2>/dev/null; then
  echo "error: $PYTHON has torch but $VENV does not see it (is $PYTHON itself a venv?); remove $VENV and rerun with" \
    "PYTHON=<the interpreter that owns the CUDA torch>" >&2
  exit 2
fi
if [[ -n $before ]]; then
  echo "torch==$before" >"$constraints"
  echo "install-gpu: keeping torch $before (pinned for pip)"
fi
# shellcheck disable=SC2086  # GPU_PIP_ARGS is a list of extra requirements / pip options
$PY -m pip install --quiet -c "$constraints" -e ".[$EXTRAS,gpu]" ${GPU_PIP_ARGS:-}
after=$($PY -c "import torch; print(torch.__version__)")
if [[ -n $before && $after != "$before" ]]; then
  echo "error: torch changed from $before to $after during install-gpu" >&2
  exit 1
fi
$PY - <<'EOF'
import importlib.metadata as md

import torch

cuda = torch.cuda.is_available()
names = ", ".join(f"{p} {md.version(p)}" for p in ("deepspeed", "vllm"))
print(f"install-gpu: torch {torch.__version__} (CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPUs visible"
      f"{'' if cuda else ', NONE usable'}), {names}")
EOF
