# RLCHF: persona judges rank K responses, social welfare functions aggregate them; the collective ranking trains
# DPO (ROWS), SFT on its top response (SFT_ROWS) and an RM + PPO (PPO_ROWS). Each target runs
# rlchf/scripts/run_all.sh (stages 01-09) with one config; runs land in $(RUNS)/rlchf/<model>/.
RLCHF_OVERWRITE = $(if $(filter true,$(OVERWRITE)),true,false)
# THREADS torch threads (Makefile; default every core). Pass THREADS=1 beside other jobs: on a loaded 2-core machine a
# 300-token SmolLM2 forward took 0.9 CPU-s with one thread, 7.7 CPU-s and 5x the wall time with two (measured here).
RLCHF_RUN = PY=$(PY) OVERWRITE=$(RLCHF_OVERWRITE) OMP_NUM_THREADS=$(THREADS) bash rlchf/scripts/run_all.sh
RLCHF_SWF_ROWS = swf_plurality swf_borda swf_copeland swf_maximin swf_kemeny_young swf_schulze swf_ranked_pairs

.PHONY: rlchf-tiny rlchf-fidelity rlchf-llama3 rlchf-qwen2.5

rlchf-tiny: $(PREPARED) ## RLCHF end to end on the embedded SmolLM2 (guided judge + policy; DPO, SFT, RM + PPO rows), repo tiny data (CPU, minutes)
	CONFIG=rlchf/configs/tiny.yaml OUT=$(RUNS)/rlchf/tiny ROWS="swf_borda" SFT_ROWS="swf_borda" \
	  PPO_ROWS="swf_borda" HF_HUB_OFFLINE=1 $(RLCHF_RUN)

# RLCHF_DPO_SEEDS: more DPO seeds on the same pairs (dpo/<row>_seed<k>/) of the rows in RLCHF_DPO_SEED_ROWS, pooled
# with the recipe's seed in the BBQ claims; side by side, one thread each when there are several. Default: the Borda
# row, which carries the paper's claims, 3 seeds in all; gold (the control) once, to stay inside 60 minutes.
RLCHF_DPO_SEEDS ?= 1 2
RLCHF_DPO_SEED_ROWS ?= swf_borda
RLCHF_FID_ENV = CONFIG=rlchf/configs/fidelity.yaml OUT=$(RUNS)/rlchf/fidelity HF_HUB_OFFLINE=1
rlchf-fidelity: $(PREPARED) ## RLCHF fidelity: SmolLM2 guided judge, 48 HH prompts x 6 personas; DPO gold + Borda (3 seeds); claims on 1,000 BBQ items
	$(RLCHF_FID_ENV) ROWS="gold swf_borda" SFT_ROWS="" $(RLCHF_RUN)
	pids=(); for seed in $(RLCHF_DPO_SEEDS); do $(RLCHF_FID_ENV) ROWS="$(RLCHF_DPO_SEED_ROWS)" PY=$(PY) \
	  OVERWRITE=$(RLCHF_OVERWRITE) DPO_SEED=$$seed OMP_NUM_THREADS=$(if $(word 2,$(RLCHF_DPO_SEEDS)),1,$(THREADS)) \
	  bash rlchf/scripts/05_dpo.sh & pids+=($$!); done; for pid in "$${pids[@]}"; do wait $$pid || exit 1; done
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$(THREADS) $(PY) -m rlchf.fidelity --config rlchf/configs/fidelity.yaml \
	  --section fidelity run_root=$(RUNS)/rlchf/fidelity dpo_seeds=$(call yaml_list,$(RLCHF_DPO_SEEDS)) \
	  dpo_seed_rows=$(call yaml_list,$(RLCHF_DPO_SEED_ROWS))

# Full-scale targets: DPO, SFT and RM start under LAUNCH (NUM_GPUS processes), PPO with RL_ENGINE (Makefile).
rlchf-llama3: $(INSTALLED) ## RLCHF on Llama-3.1-8B-Instruct; judge gemma-3-27b-it at OPENAI_BASE_URL (start vLLM first)
	CONFIG=rlchf/configs/llama3.yaml OUT=$(RUNS)/rlchf/llama3 ROWS="gold $(RLCHF_SWF_ROWS)" SFT_ROWS="gold swf_borda" \
	  PPO_ROWS="swf_borda" $(call LAUNCH_ENV,rlchf/configs/llama3.yaml) $(RLCHF_RUN)

rlchf-qwen2.5: $(INSTALLED) ## RLCHF on Qwen2.5-7B-Instruct; judge gemma-3-27b-it at OPENAI_BASE_URL (start vLLM first)
	CONFIG=rlchf/configs/qwen2.5.yaml OUT=$(RUNS)/rlchf/qwen2.5 ROWS="gold $(RLCHF_SWF_ROWS)" SFT_ROWS="gold swf_borda" \
	  PPO_ROWS="swf_borda" $(call LAUNCH_ENV,rlchf/configs/qwen2.5.yaml) $(RLCHF_RUN)
