# rlhf-repro: `make demo` and `make test` are the two commands; `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
RUNS   ?= runs
PAPERS := rldf rllr rlchf pcrm ser
# $(call yaml_list,a b c) -> [a,b,c]: a make word list as one command-line override (e.g. rl_runs=[...])
comma := ,
empty :=
space := $(empty) $(empty)
yaml_list = [$(subst $(space),$(comma),$(strip $(1)))]
# CPU machines get the CPU wheel of torch (a small local file on our images); GPU machines keep the CUDA build.
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch,torch==2.13.0)
EXTRAS ?= rldf,rllr,rlchf,pcrm,ser,api,dev
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false
export PYTHONUNBUFFERED := 1
# DATA_ROOT=<folder>: the shared mirror, a local copy of hub datasets that the fidelity recipes name as mirror:<name>
# (common/hub_data.py; default: shared/data in the folder holding this repository). Tiny targets never read it.
ifneq ($(strip $(DATA_ROOT)),)
export RLHF_SHARED_DATA := $(abspath $(DATA_ROOT))
endif

INSTALLED := $(VENV)/.installed
PREPARED  := $(VENV)/.models-prepared

# Full-scale targets (<paper>-<model>) start the SFT / RM / DPO trainers with LAUNCH, one process per GPU; recipes that
# set global_batch_size keep upstream's global batch at any NUM_GPUS (each run's run.json records the batch layout).
# RL_ENGINE (ours | verl) overrides the RL stage's engine: default the recipe's rl*.engine, else ours. Several nodes:
# LAUNCH="accelerate launch --config_file <multi-node.yaml>" or a deepspeed hostfile launch (common/README.md).
# The tiny and fidelity targets keep one plain $(PY) process per stage.
NUM_GPUS ?= $(if $(HAS_GPU),$(shell nvidia-smi -L | grep -c '^GPU'),1)
LAUNCH   ?= $(PY) -m accelerate.commands.launch --num_processes $(NUM_GPUS)
# $(call rl_engine,<recipe>): RL_ENGINE if given, else the `engine:` of the recipe's rl* sections, else ours
rl_engine = $(or $(RL_ENGINE),$(call rl_engine_pick,$(1),$(shell awk '/^[^ \#]/ {rl = /^rl/} \
  rl && /^  engine:/ {v = $$2; gsub(/["\047]/, "", v); print v}' $(1) | sort -u)))
rl_engine_pick = $(if $(word 2,$(2)),$(error $(1): rl sections name different engines ($(2)); choose one with \
  RL_ENGINE=...),$(or $(2),ours))
# $(call LAUNCH_ENV,<recipe>): the launcher settings a full-scale target hands its stage scripts
LAUNCH_ENV = LAUNCH="$(LAUNCH)" NUM_GPUS=$(NUM_GPUS) RL_ENGINE=$(call rl_engine,$(1))

.PHONY: help install install-gpu install-verl install-verl-gpu gpu-plan models demo test lint clean fidelity fidelity-table

help: ## list every target with what it does
	@grep -hE '^[a-zA-Z0-9_.%-]+:.*## ' $(MAKEFILE_LIST) | sort -u | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-22s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

install: $(INSTALLED) ## create .venv and install the project with every CPU extra (torch CPU build without a GPU)

install-gpu: ## GPU machine: .venv with every paper extra + gpu (deepspeed, vllm), keeping the machine's CUDA torch (FORCE=1: no GPU check)
	$(if $(HAS_GPU)$(filter 1,$(FORCE)),,$(error install-gpu needs a CUDA machine (nvidia-smi not found or lists no GPU); FORCE=1 installs anyway))
	PYTHON=$(PYTHON) VENV=$(VENV) EXTRAS=$(EXTRAS) HAS_GPU=$(HAS_GPU) FORCE=$(FORCE) bash envs/install_gpu.sh
	@touch $(INSTALLED)

# verl (engine: verl for RL) gets its own environment: it pins a transformers range the main one does not share.
VERL_VENV      ?= .venv-verl
VERL_PY        := $(VERL_VENV)/bin/python
VERL_INSTALLED := $(VERL_VENV)/.installed

$(VERL_INSTALLED): pyproject.toml
	@test -x $(VERL_PY) || $(PYTHON) -m venv $(VERL_VENV)
	$(VERL_PY) -m pip install --quiet --upgrade pip
	$(VERL_PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(VERL_PY) -m pip install --quiet -e ".[rl-verl]"
	@touch $@

install-verl: $(VERL_INSTALLED) ## .venv-verl: verl 0.9.1 in its own env (enough to check verl configs on a CPU machine)

install-verl-gpu: ## GPU machine: .venv-verl with verl[vllm] + vLLM for engine verl, seeing the machine's CUDA torch
	$(if $(HAS_GPU)$(filter 1,$(FORCE)),,$(error install-verl-gpu needs a CUDA machine (nvidia-smi lists no GPU); FORCE=1 installs anyway))
	@test -x $(VERL_PY) || $(PYTHON) -m venv --system-site-packages $(VERL_VENV)
	$(VERL_PY) -m pip install --quiet --upgrade pip
	$(VERL_PY) -m pip install --quiet -e ".[rl-verl-gpu]"
	@touch $(VERL_INSTALLED)

gpu-plan: $(INSTALLED) ## print the GPU memory plan of every full-scale target (GPU_MEM=80 GiB per card; README "GPU plan")
	$(PY) -m common.gpu_plan --gpu-mem $(or $(GPU_MEM),80)

$(PREPARED): $(INSTALLED) common/models.py
	HF_HUB_OFFLINE=1 $(PY) -m common.models prepare
	@touch $@

models: $(PREPARED) ## build the embedded offline models (SmolLM2-135M-Instruct, tiny Llama, MiniLM) into .cache/

demo: $(PREPARED) ## run every paper's tiny pipeline end to end on the embedded models, then print the results table
	HF_HUB_OFFLINE=1 $(PY) -m common.demo --runs $(RUNS)/demo

test: $(PREPARED) $(VERL_INSTALLED) ## run the test suite (offline, CPU)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(INSTALLED) ## ruff over the project
	$(BIN)/ruff check common $(PAPERS) bench tests

# Every paper's fidelity run (CPU, real data from the shared mirror; 8-65 min each on 2 cores, see each README; not
# in make test), then one cross-paper table. A failed paper does not stop the others (-k); the table lists it as "not run".
# THREADS: torch CPU threads per fidelity process (RLDF, RLLR, RLCHF). Default every core: `make fidelity` runs one
# paper at a time. Set THREADS=1 when two runs share a 2-core machine (make -j2, another job): two threads per run
# then spin against each other.
THREADS ?= $(shell nproc 2>/dev/null || echo 1)
fidelity: ## every <paper>-fidelity, then the cross-paper table + plots (reports/fidelity) and README's fidelity block
	-$(MAKE) -k $(addsuffix -fidelity,$(PAPERS))
	$(MAKE) fidelity-table

fidelity-table: ## record the claims.json files under $(RUNS), then the cross-paper table, plots, README and paper README tables
	$(PY) -m common.fidelity --runs $(RUNS) --out reports/fidelity --readme README.md --paper-readmes

clean: ## remove runs/, caches and the virtual environment
	rm -rf $(RUNS) .cache $(VENV) $(VERL_VENV) .pytest_cache wandb
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Each paper adds its own targets (<paper>-tiny, <paper>-<model>, <paper>-fidelity) in <paper>/paper.mk.
include $(wildcard $(addsuffix /paper.mk,$(PAPERS)) bench/bench.mk)
