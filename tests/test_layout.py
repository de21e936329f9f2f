"""The repository's shape: top-level layout, envs/ vs pyproject extras, `make help` lists every target."""

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAPERS = ["rldf", "rllr", "rlchf", "pcrm", "ser"]


def test_top_level_layout():
    for entry in [*PAPERS, "common", "envs", "Makefile", "tests", "README.md", "pyproject.toml", ".ci/run"]:
        assert (ROOT / entry).exists(), f"{entry} is missing from the repository root"


@pytest.mark.parametrize("paper", PAPERS)
def test_paper_folder_is_a_package_with_configs_scripts_readme(paper):
    folder = ROOT / paper
    assert (folder / "__init__.py").exists() and (folder / "README.md").exists()
    assert (folder / "configs").is_dir() and (folder / "scripts").is_dir()


@pytest.mark.parametrize("paper", PAPERS)
def test_conda_env_matches_pyproject_extra(paper):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"][paper])
    env = yaml.safe_load((ROOT / "envs" / f"{paper}.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == expected, f"envs/{paper}.yml differs from pyproject [{paper}]: {listed ^ expected}"
    assert f"-e ..[{paper}]" in pip


@pytest.mark.parametrize("paper", PAPERS)
def test_gpu_conda_env_matches_pyproject_paper_and_gpu_extras(paper):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    expected = set(project["dependencies"]) | set(extras[paper]) | set(extras["gpu"])
    assert {"deepspeed", "vllm"} <= {re.split(r"[<>=!~ \[]", d)[0] for d in extras["gpu"]}
    env = yaml.safe_load((ROOT / "envs" / f"{paper}-gpu.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == expected, f"envs/{paper}-gpu.yml differs from pyproject [{paper},gpu]: {listed ^ expected}"
    assert f"-e ..[{paper},gpu]" in pip


def test_verl_conda_env_matches_pyproject_rl_verl_gpu_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    expected = set(project["dependencies"]) | set(extras["rl-verl-gpu"])
    env = yaml.safe_load((ROOT / "envs" / "rl-verl.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {p for p in pip if not p.startswith("-e")} == expected
    assert "-e ..[rl-verl-gpu]" in pip
    # the CPU environment (config checks) and the GPU one run the same verl release
    pins = {re.sub(r"\[.*\]", "", d) for d in extras["rl-verl"] + extras["rl-verl-gpu"] if d.startswith("verl")}
    assert len(pins) == 1, pins


def test_install_gpu_refuses_without_a_gpu_in_one_line():
    done = subprocess.run(["make", "--no-print-directory", "install-gpu", "HAS_GPU=", "FORCE="], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and not done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "install-gpu needs a CUDA machine" in lines[0] and "FORCE=1" in lines[0]


def _defined_targets() -> set[str]:
    makefiles = [ROOT / "Makefile", *ROOT.glob("*/paper.mk"), *ROOT.glob("bench/*.mk")]
    targets = set()
    for mk in makefiles:
        for line in mk.read_text().splitlines():
            m = re.match(r"^([a-zA-Z0-9][a-zA-Z0-9_.-]*)\s*:(?!=)", line)
            if m and not m.group(1).startswith(".") and "/" not in m.group(1):
                targets.add(m.group(1))
    return targets


def test_make_help_lists_every_target():
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    missing = _defined_targets() - listed
    assert not missing, f"targets without a '## ' help line: {sorted(missing)}"
    for target in ["demo", "test", "models", "help", "clean"]:
        assert target in listed


@pytest.mark.parametrize("paper", PAPERS)
def test_papers_never_import_each_other(paper):
    """What two papers share lives in common/; a paper importing another would hide that."""
    others = "|".join(p for p in PAPERS if p != paper)
    pattern = re.compile(rf"^\s*(from|import)\s+({others})(\.|\s|$)", re.MULTILINE)
    offenders = [f"{f.relative_to(ROOT)}:{m.group(0).strip()}" for f in (ROOT / paper).rglob("*.py")
                 for m in pattern.finditer(f.read_text())]
    assert not offenders, offenders
