#!/usr/bin/env bash
# Download (here, where PyPI answers) the wheels the GPU machine lacks into .whl/ (git-ignored), for Python 3.12 on
# x86-64, as the device tool's README describes (the lent GPU machine is offline). The GPU image already has torch, accelerate, peft, pyarrow,
# pandas, xxhash, tokenizers and huggingface-hub; it lacks TRL, datasets (+ dill, multiprocess) and Liger, and its
# transformers (5.17) is older than the one our code is tested on (5.24). trl 1.12.0 is the PPO baseline: bench.ppo
# installs it alone into .cache/bench/trl-1.12.0 from this folder (bench/gpu.sh keeps it out of the main install).
set -euo pipefail
DEST=${1:-.whl}
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
fetch() {
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLAT[@]}" -d "$DEST" "$@"
}
fetch trl==1.16.0
fetch trl==1.12.0
fetch transformers==5.24.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
fetch liger-kernel || echo "note: no liger-kernel wheel; TRL best runs without Liger" >&2
ls -la "$DEST"
du -sh "$DEST"
