"""rldf/scripts/05_rl.sh: RL_SEED trains another RL seed into its own folder (what make rldf-fidelity pools)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("seed", ["", "7"])
def test_rl_seed_sets_the_seed_and_its_own_output_folder(tmp_path, seed):
    calls = tmp_path / "calls"
    stub = tmp_path / "py"  # real python for env.sh's recipe check, a recorder for the stage command
    stub.write_text(f'#!/usr/bin/env bash\nif [[ $1 == -c ]]; then exec {sys.executable} "$@"; fi\n'
                    f'printf "%s\\n" "$@" > {calls}\n')
    stub.chmod(0o755)
    env = {**os.environ, "PY": str(stub), "MODEL": "fidelity", "CONFIG": "rldf/configs/fidelity.yaml",
           "RUNS": str(tmp_path / "runs"), "POLICY": "embedded:smollm2-135m-instruct", "RL_SEED": seed}
    subprocess.run(["bash", "rldf/scripts/05_rl.sh"], cwd=ROOT, env=env, check=True)
    args = calls.read_text().splitlines()
    assert args[:2] == ["-m", "common.train.ppo"]
    out = tmp_path / "runs" / "rldf" / "fidelity" / ("rl_seed7" if seed else "rl")
    assert f"output_dir={out}" in args
    assert ("seed=7" in args) == bool(seed)
