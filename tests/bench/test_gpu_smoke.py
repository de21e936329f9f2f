"""The GPU smoke script's plan (what a GPU machine will run), checked on CPU without running it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_plans_verl_ppo_and_remax_our_ppo_two_process_sft_and_the_trl_sweep(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.gpu_smoke", "--dry-run", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    commands = [line for line in out.splitlines() if line.startswith("+ ")]
    assert len(commands) == 5
    verl_ppo, verl_remax, ours_ppo, sft, sweep = commands
    assert "engine=verl" in verl_ppo and "algorithm=ppo" in verl_ppo and "total_steps=2" in verl_ppo
    assert "engine=verl" in verl_remax and "algorithm=remax" in verl_remax
    assert "engine=ours" in ours_ppo and "algorithm=ppo" in ours_ppo
    assert "--num_processes 2" in sft and "common.train.sft" in sft and "max_steps=1" in sft
    assert "bench.sweep" in sweep and "--device cuda" in sweep
    for row in ("verl-ppo", "verl-remax", "ours-ppo", "sft-2proc", "bench-sweep"):
        assert f"| {row} | planned |" in out


def test_without_a_gpu_it_refuses_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.gpu_smoke", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: bench.gpu_smoke needs a CUDA GPU (nvidia-smi lists none); --dry-run shows the plan"]
