"""Check verl trainer configs with verl's own files and schema, before any GPU is asked for (run in verl's env).

    .venv-verl/bin/python -m common.verl_check --config runs/x/rl/verl/rlhf_repro.yaml [--override k=v ...]
    .venv-verl/bin/python -m common.verl_check --batch checks.json     # several configs, one import of verl

For each config: hydra composes it on top of verl's ``ppo_trainer.yaml`` (``--override`` strings go through hydra's
grammar, so an unknown key in them fails there); every key the file sets must already exist in verl's config (a
renamed or misspelt key is an error, not a silently added one); each key set is checked against the type of the
field of verl's config dataclass that holds it; then verl's ``validate_config`` runs (batch-size
divisibility over the GPUs, micro-batch rules, the actor/critic/rollout dataclasses with their types and
``__post_init__`` checks). ``--model-standin DIR`` lets the model-dependent parts (tokenizer, HF config) load offline
from a local model of the same family while the checked config keeps its hub ids.

Prints one JSON line per config (``{"config", "ok", "error"?, "adv_estimator", "use_critic"}``); exit 2 if any failed.
This module imports only the standard library, yaml, hydra/omegaconf and verl.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import typing
from pathlib import Path
from typing import Any

NEW_KEYS = ("reward.custom_reward_function.reward_kwargs", "actor_rollout_ref.actor.optim.override_optimizer_config",
            "critic.optim.override_optimizer_config")  # as common.verl_bridge.NEW_KEYS
MODEL_PATH_KEYS = ("actor_rollout_ref.model.path", "critic.model.path")


def _leaves(tree: Any, prefix: str = "") -> list[str]:
    if not isinstance(tree, dict):
        return [prefix[:-1]]
    out: list[str] = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path in NEW_KEYS or not isinstance(value, dict) or not value:
            out.append(path)
        else:
            out.extend(_leaves(value, path + "."))
    return out


def _unknown_keys(document: dict, base) -> list[str]:
    from omegaconf import OmegaConf

    own = {k: v for k, v in document.items() if k not in ("hydra", "defaults")}
    missing = []
    for key in _leaves(own):
        if key in NEW_KEYS:
            continue
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(base, parent_key, default=None) if parent_key else base
        # keys(), not `in`: a declared but unset value (verl's "???") is a known key
        if parent is None or not hasattr(parent, "keys") or leaf not in list(parent.keys()):
            missing.append(key)
    return missing


def _type_errors(cfg, keys: list[str]) -> list[str]:
    """Each key we set, against the field type of verl's dataclass that holds it (verl builds its dataclasses with
    hydra's instantiate, which does not check types: ppo_epochs='two' would pass its own validation)."""
    import dataclasses

    from hydra.utils import get_class
    from omegaconf import DictConfig, OmegaConf

    errors = []
    for key in keys:
        parts = key.split(".")
        node, owner, rel = cfg, None, None
        for i, part in enumerate(parts[:-1]):
            node = node.get(part) if isinstance(node, DictConfig) else None
            if node is None:
                break
            target = node.get("_target_") if "_target_" in node else None
            if target:
                cls = get_class(target)
                if dataclasses.is_dataclass(cls):
                    owner, rel = cls, parts[i + 1:]
        if owner is None or len(rel) != 1 or rel[0] not in {f.name for f in dataclasses.fields(owner)}:
            continue
        parent = OmegaConf.select(cfg, ".".join(parts[:-1]))
        try:
            annotation = typing.get_type_hints(owner)[rel[0]]
            # a one-field schema: OmegaConf checks the value against the field's annotation on assignment
            holder = OmegaConf.structured(dataclasses.make_dataclass("Field", [("value", annotation)]))
            holder.value = parent[rel[0]]
        except Exception as exc:  # noqa: BLE001 - reported as this key's type error
            errors.append(f"{key}: {' '.join(str(exc).split())[:200]}")
    return errors


def check_one(config_file: str, overrides: list[str], model_standin: str | None) -> dict[str, Any]:
    import yaml
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    path = Path(config_file).resolve()
    result: dict[str, Any] = {"config": str(config_file), "ok": False}
    try:
        document = yaml.safe_load(path.read_text())
        GlobalHydra.instance().clear()
        with initialize_config_module("verl.trainer.config", version_base=None):
            base = compose("ppo_trainer")
        unknown = _unknown_keys(document, base)
        if unknown:
            raise KeyError(f"verl has no key {unknown[0]!r}" + (f" (and {len(unknown) - 1} more: {unknown[1:]})"
                                                                 if len(unknown) > 1 else ""))
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(path.parent), version_base=None):
            cfg = compose(path.stem, overrides=list(overrides))
        if model_standin:
            with open_dict(cfg):
                for key in MODEL_PATH_KEYS:
                    node, leaf = key.rsplit(".", 1)
                    section = cfg
                    for part in node.split("."):
                        section = section[part]
                    section[leaf] = model_standin
        set_keys = [k for k in _leaves({k: v for k, v in document.items() if k not in ("hydra", "defaults")})]
        set_keys += [o.split("=", 1)[0].lstrip("+~") for o in overrides]
        type_errors = _type_errors(cfg, set_keys)
        if type_errors:
            raise TypeError(f"wrong type for {type_errors[0]}" + (f" (and {len(type_errors) - 1} more)"
                                                                  if len(type_errors) > 1 else ""))
        use_critic = need_critic(cfg)
        try:
            validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=use_critic)
        except ValueError as exc:
            # verl 0.9.1 checks a LoRA rank against vLLM's allowed ranks last, by importing vLLM; on a machine
            # without vLLM (CPU tests) every other check has passed by then, so say which one was skipped
            if importlib.util.find_spec("vllm") is not None or "vllm version None" not in str(exc):
                raise
            result["skipped"] = ["LoRA rank vs vLLM's allowed ranks (vllm is not installed here)"]
        result.update(ok=True, adv_estimator=str(cfg.algorithm.adv_estimator), use_critic=bool(use_critic),
                      n_gpus=int(cfg.trainer.n_gpus_per_node * cfg.trainer.nnodes))
    except Exception as exc:  # noqa: BLE001 - any failure is reported as that config's one-line error
        message = " ".join(str(exc).split()) or type(exc).__name__
        result["error"] = f"{type(exc).__name__}: {message[:600]}"
    finally:
        GlobalHydra.instance().clear()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.verl_check", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="a hydra YAML written by common.train.verl_engine")
    parser.add_argument("--override", action="append", default=[], help="hydra override 'key=value' (repeatable)")
    parser.add_argument("--model-standin", help="local model folder used for the model-dependent checks only")
    parser.add_argument("--batch", help="json list of {config, overrides?, model_standin?}")
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.batch):
        parser.error("give --config or --batch")
    jobs = (json.loads(Path(args.batch).read_text()) if args.batch
            else [{"config": args.config, "overrides": args.override, "model_standin": args.model_standin}])
    failed = 0
    for job in jobs:
        result = check_one(job["config"], job.get("overrides") or [], job.get("model_standin"))
        failed += not result["ok"]
        print(json.dumps(result), flush=True)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
