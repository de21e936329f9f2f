# Throughput benchmark of every training stage, ours vs TRL (bench/README.md). Records go to $(RUNS)/bench/.
BENCH_CPU_ARGS ?= --model-size tiny --device cpu --steps 4 --warmup 1 --batch 4 --min-len 64 --max-len 512 --gen-len 32

.PHONY: bench-cpu bench-gpu bench-wheels bench-test gpu-smoke

bench-cpu: $(INSTALLED) ## CPU throughput sweep (tiny random Llama; sft rm dpo ppo × ours / TRL default / TRL best)
	mkdir -p $(RUNS)/bench
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m bench.sweep --out $(RUNS)/bench/cpu-tiny.jsonl -- $(BENCH_CPU_ARGS)

bench-wheels: ## download the wheels the offline GPU machine lacks into .whl/ (TRL 1.16 + 1.12, datasets, Liger)
	bash bench/fetch_wheels.sh .whl

bench-gpu: ## GPU throughput sweep on the 1b (TinyLlama-shaped) model, bf16; run on an H100/H200 (see bench/README.md)
	OUT=$(RUNS)/bench PY=$(if $(wildcard $(PY)),$(PY),python3) bash bench/gpu.sh

bench-test: $(INSTALLED) ## the benchmark's tests (one tiny step per stage and implementation; fast paths = plain paths)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests/bench

gpu-smoke: $(PREPARED) ## GPU smoke (< 10 min): 2 verl PPO + 2 verl ReMax steps, our PPO, 2-process SFT, ours vs TRL; one table
	HF_HUB_OFFLINE=1 $(PY) -m bench.gpu_smoke --out $(RUNS)/gpu_smoke
