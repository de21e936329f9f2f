"""RELIABILITY.md stays true: every test its table names exists (a renamed or deleted test fails here)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+)(\[[^`\]]*\])?)?`")


def _node_ids() -> list[tuple[str, str | None, str | None]]:
    text = (ROOT / "RELIABILITY.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| what is tried")]
    nodes = [m.groups() for row in rows for m in NODE.finditer(row.rsplit("|", 2)[-2])]
    assert len(rows) >= 40 and len(nodes) >= len(rows), "each row names at least one test"
    return nodes


def test_every_test_the_reliability_table_names_exists():
    missing = []
    for path, name, param in _node_ids():
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
            continue
        code = source.read_text()
        if name and not re.search(rf"^(async )?def {name}\(", code, re.MULTILINE):
            missing.append(f"{path}::{name}")
        elif param and path.endswith("test_bad_inputs.py") and f'"{param[1:-1]}"' not in code:
            missing.append(f"{path}::{name}{param}")  # the case id of the parametrised bad-input list
    assert not missing, f"RELIABILITY.md names tests that do not exist: {missing}"
