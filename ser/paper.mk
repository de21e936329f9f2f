# SER (Self-Evolved Reward Learning): `make ser-<model> DATASET=hh|ultrafeedback|summarize|stackexchange`.
# SER_PIPELINE(model, dataset, hf_hub_offline): the four stage scripts, PPO once per RM (seed, SER, 100% labels).
SER_DATASET ?= $(or $(DATASET),hh)
# SER_PIPELINE's 4th argument: more environment for every stage; the full-scale targets pass the launcher settings
# (SER_FULL: SFT under LAUNCH with NUM_GPUS processes, RM_LAUNCH=... starts the loop's RMs the same way, PPO with
# RL_ENGINE; see the Makefile). ser-tiny keeps one plain process per stage.
SER_ENV = CONFIG=ser/configs/$(1).yaml MODEL=$(1) RUNS=$(RUNS) PY=$(PY) DATASET=$(or $(2),$(SER_DATASET)) OVERWRITE=$(or $(OVERWRITE),false) HF_HUB_OFFLINE=$(or $(3),$(HF_HUB_OFFLINE),0) $(4)
SER_PIPELINE = $(call SER_ENV,$(1),$(2),$(3),$(4)) bash ser/scripts/01_sft.sh && $(call SER_ENV,$(1),$(2),$(3),$(4)) bash ser/scripts/02_ser_loop.sh && \
  for rm in seed ser full; do RM=$$rm $(call SER_ENV,$(1),$(2),$(3),$(4)) bash ser/scripts/03_ppo.sh || exit 1; done && \
  $(call SER_ENV,$(1),$(2),$(3),$(4)) bash ser/scripts/04_eval.sh
SER_FULL = $(call SER_PIPELINE,$(1),,,$(call LAUNCH_ENV,ser/configs/$(1).yaml))

.PHONY: ser-tiny ser-fidelity ser-fidelity-finetuned ser-policy-fidelity ser-llama3 ser-mistral ser-llama2-13b ser-llama2-70b

ser-tiny: $(PREPARED) ## whole SER pipeline on the embedded models + tiny SST-2-style pairs (SFT, loop, PPO x3, judge); ends with the summary
	$(call SER_PIPELINE,tiny,sst2,1)

# SER_FIDELITY_ARGS: more ser.fidelity settings for both runs, e.g. "patience=1 selection_size=300 keep_loop=last"
ser-fidelity: $(PREPARED) ## SER on SST-2 + HH-RLHF, seed 1/5/15%, 10 splits of 2,000 train / 1,000 selection / 1,000 held-out pairs, frozen MiniLM (paper's input), then SST-2 with bare-answer input; results.md, fidelity.png, claims.json (~45 min)
	HF_HUB_OFFLINE=1 $(PY) -m ser.fidelity output_dir=$(RUNS)/ser/fidelity $(SER_FIDELITY_ARGS) \
	  $(if $(filter true,$(OVERWRITE)),--overwrite true)
	HF_HUB_OFFLINE=1 $(PY) -m ser.fidelity output_dir=$(RUNS)/ser/fidelity_bare datasets=sst2 input_format=bare \
	  $(SER_FIDELITY_ARGS) $(if $(filter true,$(OVERWRITE)),--overwrite true)

ser-fidelity-finetuned: $(PREPARED) ## SER on SST-2 pairs with MiniLM fine-tuned every loop (common_rm backend, one split; ~25 min CPU)
	HF_HUB_OFFLINE=1 $(PY) -m ser.fidelity output_dir=$(RUNS)/ser/fidelity_finetuned \
	  backend=common_rm datasets=sst2 seeds=42 train_size=1100 heldout_size=400 selection_size=300 patience=1 \
	  $(if $(filter true,$(OVERWRITE)),--overwrite true)

ser-policy-fidelity: $(PREPARED) ## PPO (SmolLM2) on the seed/SER/100% RMs of ser-fidelity at 1 %, graded by ser-fidelity-finetuned's RM (run both first)
	HF_HUB_OFFLINE=1 $(PY) -m ser.policy_fidelity rl_config=ser/configs/policy_fidelity.yaml \
	  ser_loop=$(RUNS)/ser/fidelity/sst2/seed_1pct/split_42 gold_loop=$(RUNS)/ser/fidelity_finetuned/sst2/seed_1pct/split_42 \
	  output_dir=$(RUNS)/ser/policy_fidelity $(if $(filter true,$(OVERWRITE)),--overwrite true)

ser-llama3: $(INSTALLED) ## SER on Meta-Llama-3-8B: SFT, seed RM, SER loop, PPO x3 (seed/SER/full RM), judge (DATASET=hh|...)
	$(call SER_FULL,llama3)

ser-mistral: $(INSTALLED) ## SER on Mistral-7B-v0.1 (same pipeline as ser-llama3)
	$(call SER_FULL,mistral)

ser-llama2-13b: $(INSTALLED) ## SER on Llama-2-13B (same pipeline as ser-llama3)
	$(call SER_FULL,llama2-13b)

ser-llama2-70b: $(INSTALLED) ## SER on Llama-2-70B: LoRA r 2, ZeRO-3; multi-node (launch via accelerate/deepspeed hostfile)
	$(call SER_FULL,llama2-70b)
