"""YAML recipes mapped onto stage dataclasses, with command-line overrides.

A recipe file (e.g. ``rldf/configs/llama2.yaml``) has one top-level key per stage (``sft:``, ``rm:``, ``rl:``...).
Each stage's entry point owns a dataclass; its section of the YAML maps one-to-one onto that dataclass, and an
unknown key is an error that names its full path (``rm.lora_rr``). Command-line overrides come after the file:
``--learning_rate 1e-4`` or ``learning_rate=1e-4``. Shared settings are written once with YAML anchors
(``<<: *model``), which PyYAML merges before we see the section.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class UserError(Exception):
    """Bad input from the user (config, data, CLI). Entry points print it as one line and exit non-zero."""


class ConfigError(UserError, ValueError):
    """A config value or key is wrong; the message names the key by its full path."""


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def coerce_value(value: Any, tp: Any, where: str) -> Any:
    """Cast a YAML or command-line value to the dataclass field type ``tp``; raise ConfigError naming ``where``."""
    inner, optional = _unwrap_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null", "")):
        if optional or inner is Any:
            return None
        raise ConfigError(f"{where}: null is not allowed (expected {getattr(inner, '__name__', inner)})")
    origin = typing.get_origin(inner)
    try:
        if inner is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if inner is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if inner is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if inner is str:
            if isinstance(value, (dict, list)):
                raise ValueError(value)
            return str(value)
        if origin in (list, tuple):
            (item_tp, *_) = typing.get_args(inner) or (Any,)
            if isinstance(value, str) and value.strip().startswith("["):  # a YAML flow list: [a, b] or [{k: v}]
                value = yaml.safe_load(value)
            elif isinstance(value, str):
                value = [v for v in (s.strip() for s in value.split(",")) if v] if value.strip() else []
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            items = [coerce_value(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
            return items if origin is list else tuple(items)
        if origin is dict or inner is dict:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        if origin is typing.Literal:
            allowed = typing.get_args(inner)
            if value not in allowed:
                raise ConfigError(f"{where}: {value!r} is not one of {list(allowed)}")
            return value
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(
            f"{where}: cannot read {value!r} as {getattr(inner, '__name__', str(inner))}"
        ) from None
    return value


def build_dataclass(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Instantiate ``cls`` from a mapping, refusing unknown keys and casting each value to its field type."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key for {cls.__name__}; known keys: {sorted(fields)}"
        )
    kwargs = {k: coerce_value(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where}: {exc}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of stage sections")
    return data


def parse_overrides(argv: list[str]) -> dict[str, str]:
    """``--key value``, ``--key=value`` and ``key=value`` forms; a bare ``--flag`` means true."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("--"):
            key = tok[2:]
            if "=" in key:
                key, val = key.split("=", 1)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                val = argv[i + 1]
                i += 1
            else:
                val = "true"
        elif "=" in tok:
            key, val = tok.split("=", 1)
        else:
            raise ConfigError(f"command line: cannot read {tok!r}; write overrides as --key value or key=value")
        out[key.replace("-", "_")] = val
        i += 1
    return out


def load_config(
    cls: type[T],
    config_path: str | Path | None = None,
    section: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> T:
    """The ``section`` of the YAML at ``config_path`` (or the whole file when ``section`` is None), then overrides."""
    values: dict[str, Any] = {}
    where = section or cls.__name__
    if config_path is not None:
        data = read_yaml(config_path)
        if section is not None:
            if section not in data:
                raise ConfigError(f"{config_path}: no section {section!r}; sections: {sorted(data)}")
            raw = data[section] if data[section] is not None else {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{config_path}: section {section!r} must be a mapping of settings (key: value), "
                                  f"not a {type(raw).__name__}")
            values = dict(raw)
            where = f"{Path(config_path).name}:{section}"
        else:
            values = data
    values.update(overrides or {})
    return build_dataclass(cls, values, where)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def help_meta(text: str) -> dict[str, str]:
    """``field(metadata=help_meta("..."))``: the text ``field_help`` prints for that field under ``--help``."""
    return {"help": text}


def field_help(cls: type) -> str:
    """One line per field (name, type, default, first docstring line of the field comment) for ``--help``."""
    hints = typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "REQUIRED"  # type: ignore[misc]
        )
        tp = getattr(hints[f.name], "__name__", str(hints[f.name])).replace("typing.", "")
        doc = f.metadata.get("help", "")
        lines.append(f"  --{f.name:<28} {tp:<14} default {default!r}  {doc}")
    return "\n".join(lines)


def stage_cli(
    cls: type[T],
    run: Callable[[T], Any],
    section: str,
    description: str,
    argv: list[str] | None = None,
) -> Any:
    """Shared entry-point wrapper: ``--config X.yaml [--section S] [--key value ...]``; UserError -> one line, exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"settings of [{section}] (override any with --key value):\n" + field_help(cls),
    )
    parser.add_argument("--config", help="YAML recipe; its section named by --section is used")
    parser.add_argument("--section", default=section, help=f"section of the YAML to read (default {section!r})")
    known, rest = parser.parse_known_args(argv)
    return run_cli(lambda: run(load_config(cls, known.config, known.section if known.config else None,
                                           parse_overrides(rest))))


def run_cli(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a UserError becomes ``error: <message>`` on stderr and exit status 2 (no traceback)."""
    try:
        return fn()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
