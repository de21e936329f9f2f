# RLLR (arXiv 2405.19763): label-sensitive reward for NLU. Targets below; `make help` lists them.
# TASK=<task> narrows a model target to one task (default: the paper's eight); MODES="rllr" to one PPO mode.
rllr_comma   := ,
RLLR_TASKS   := mr ag_news app_reviews mrpc qqp mnli sst2 stsb
# GPU runs: the stage scripts, SFT and RM trainers under LAUNCH (NUM_GPUS processes), PPO with RL_ENGINE (Makefile)
RLLR_RUN      = CONFIG=$(1) RUNS=$(RUNS) OVERWRITE=$(OVERWRITE) PY=$(PY) MODEL=$(2) TASKS="$(or $(TASK),$(3))" \
                TRUST_REMOTE_CODE=$(TRUST_REMOTE_CODE) \
                $(if $(MODES),MODES="$(MODES)") $(call LAUNCH_ENV,$(1)) bash rllr/scripts/run_all.sh

# Models that run their own hub code (the recipe's `remote_code`) start only with TRUST_REMOTE_CODE=true
RLLR_REMOTE   = @test "$(TRUST_REMOTE_CODE)" = true || { echo "error: $(1) runs its own code from the hub; rerun \
with TRUST_REMOTE_CODE=true to allow it" >&2; exit 2; }

# CPU runs: every stage in one interpreter (rllr/pipeline.py), THREADS torch threads (Makefile: 1 when runs share cores)
RLLR_PIPELINE = HF_HUB_OFFLINE=1 $(PY) -m rllr.pipeline --config $(1) --model $(2) --tasks sst2$(rllr_comma)rte \
                --runs $(RUNS) --threads $(THREADS) $(if $(MODES),--modes $(MODES)) $(if $(filter true,$(OVERWRITE)),--overwrite)

.PHONY: rllr-tiny rllr-fidelity rllr-llama2 rllr-llama2-13b rllr-baichuan2 rllr-baichuan2-13b rllr-chatglm3 \
        rllr-mistral rllr-bloom3b rllr-bloom7b

rllr-tiny: $(PREPARED) ## RLLR on the tiny embedded Llama (shipped tiny SST-2 + RTE, lexicon rationales): every stage in one process
	$(call RLLR_PIPELINE,rllr/configs/tiny.yaml,tiny)

rllr-fidelity: $(PREPARED) ## RLLR on SmolLM2, SST-2 + RTE (~47 min alone on 2 cores): RM accuracy on label pairs, five systems, claims.json
	$(call RLLR_PIPELINE,rllr/configs/fidelity.yaml,fidelity) --reuse-start-answers
	HF_HUB_OFFLINE=1 $(PY) -m rllr.fidelity --root $(RUNS)/rllr/fidelity/sst2+rte --threads $(THREADS)

rllr-llama2: $(PREPARED) ## RLLR on Llama-2-7b-chat, eight tasks, RLHF/RLLR/RLLR-mixed PPO and comparison tables (GPU)
	$(call RLLR_RUN,rllr/configs/llama2.yaml,llama2,$(RLLR_TASKS))

rllr-llama2-13b: $(PREPARED) ## RLLR on Llama-2-13b-chat, eight tasks, three PPO modes (GPU)
	$(call RLLR_RUN,rllr/configs/llama2-13b.yaml,llama2-13b,$(RLLR_TASKS))

rllr-baichuan2: $(PREPARED) ## RLLR on Baichuan2-7B-Chat, eight tasks, three PPO modes (GPU; needs TRUST_REMOTE_CODE=true)
	$(call RLLR_REMOTE,baichuan-inc/Baichuan2-7B-Chat)
	$(call RLLR_RUN,rllr/configs/baichuan2.yaml,baichuan2,$(RLLR_TASKS))

rllr-baichuan2-13b: $(PREPARED) ## RLLR on Baichuan2-13B-Chat, eight tasks, three PPO modes (GPU; τ from rllr.tau; needs TRUST_REMOTE_CODE=true)
	$(call RLLR_REMOTE,baichuan-inc/Baichuan2-13B-Chat)
	$(call RLLR_RUN,rllr/configs/baichuan2-13b.yaml,baichuan2-13b,$(RLLR_TASKS))

rllr-chatglm3: $(PREPARED) ## RLLR on chatglm3-6b, eight tasks, three PPO modes (GPU; needs TRUST_REMOTE_CODE=true)
	$(call RLLR_REMOTE,THUDM/chatglm3-6b)
	$(call RLLR_RUN,rllr/configs/chatglm3.yaml,chatglm3,$(RLLR_TASKS))

rllr-mistral: $(PREPARED) ## RLLR on Mistral-7B-Instruct-v0.2, eight tasks, three PPO modes (GPU)
	$(call RLLR_RUN,rllr/configs/mistral.yaml,mistral,$(RLLR_TASKS))

rllr-bloom3b: $(PREPARED) ## RLLR on bloom-3b, eight tasks, three PPO modes (GPU)
	$(call RLLR_RUN,rllr/configs/bloom3b.yaml,bloom3b,$(RLLR_TASKS))

rllr-bloom7b: $(PREPARED) ## RLLR on bloom-7b1, eight tasks, three PPO modes (GPU)
	$(call RLLR_RUN,rllr/configs/bloom7b.yaml,bloom7b,$(RLLR_TASKS))
