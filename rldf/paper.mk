# RLDF (arXiv 2404.10160): multi-role debates as feedback for bias mitigation. MODE=self|teacher picks the data mode,
# ALGO=ppo|remax overrides rl.algorithm (config default: remax, as the released code), STAGES="02_rm 05_rl" a subset.
# Full-scale targets: RM and SFT start under LAUNCH (NUM_GPUS processes), RL with RL_ENGINE (Makefile).
RLDF_MODE      = $(or $(MODE),self)
RLDF_RUN       = MODEL=$(1) RUNS=$(RUNS) OVERWRITE=$(OVERWRITE) PY=$(PY) MODE=$(RLDF_MODE) ALGO=$(ALGO) \
                 STAGES="$(STAGES)" $(call LAUNCH_ENV,rldf/configs/$(1).yaml)
RLDF_REMOTE    = @test "$(TRUST_REMOTE_CODE)" = true || { echo "error: $(1) runs its own code from the hub; rerun \
with TRUST_REMOTE_CODE=true to allow it" >&2; exit 2; }

.PHONY: rldf-tiny rldf-llama2 rldf-chatglm3 rldf-qwen1.5 rldf-baichuan2 rldf-fidelity

rldf-tiny: $(PREPARED) ## RLDF every stage on SmolLM2: teacher debates via a local common.serve, RM, SFT, ReMax, BBQ
	HF_HUB_OFFLINE=1 MODEL=tiny CONFIG=rldf/configs/tiny.yaml RUNS=$(RUNS) OVERWRITE=$(OVERWRITE) PY=$(PY) \
	  MODE=teacher SERVE_TEACHER=embedded:smollm2-135m-instruct bash rldf/scripts/run_all.sh

rldf-llama2: $(INSTALLED) ## RLDF on Llama-2-7b-chat (MODE=self|teacher, ALGO=remax|ppo)
	$(call RLDF_RUN,llama2) bash rldf/scripts/run_all.sh

rldf-chatglm3: $(INSTALLED) ## RLDF on ChatGLM3-6B (needs TRUST_REMOTE_CODE=true; MODE, ALGO as rldf-llama2)
	$(call RLDF_REMOTE,THUDM/chatglm3-6b)
	TRUST_REMOTE_CODE=true $(call RLDF_RUN,chatglm3) bash rldf/scripts/run_all.sh

rldf-qwen1.5: $(INSTALLED) ## RLDF on Qwen1.5-7B-Chat (MODE, ALGO as rldf-llama2)
	$(call RLDF_RUN,qwen1.5) bash rldf/scripts/run_all.sh

rldf-baichuan2: $(INSTALLED) ## RLDF on Baichuan2-7B-Chat (needs TRUST_REMOTE_CODE=true; MODE, ALGO as rldf-llama2)
	$(call RLDF_REMOTE,baichuan-inc/Baichuan2-7B-Chat)
	TRUST_REMOTE_CODE=true $(call RLDF_RUN,baichuan2) bash rldf/scripts/run_all.sh

# THREADS torch threads (Makefile; default every core, THREADS=1 beside other jobs: rlchf/paper.mk says why).
# RLDF_RL_SEEDS: more ReMax seeds from the same RM (rl_seed<k>/), pooled with the recipe's seed in the BBQ claims.
# Several train side by side, one thread each (ReMax rollouts of 4 prompts barely use a second thread). Default two
# extra seeds, 52 min on 2 cores (rldf/README.md, Fidelity run); there two seeds turned one BBQ row the way a
# third undid, so fewer seeds is cheaper but less trustworthy.
RLDF_RL_SEEDS ?= 1 2
RLDF_FID_ENV = HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$(THREADS) MODEL=fidelity CONFIG=rldf/configs/fidelity.yaml \
  RUNS=$(RUNS) OVERWRITE=$(OVERWRITE) PY=$(PY) MODE=self POLICY=embedded:smollm2-135m-instruct
rldf-fidelity: $(PREPARED) ## RLDF on SmolLM2 (CPU): self-debates on 136 age topics (102 held out), RM, ReMax x 3 seeds, claims on 1,000 BBQ Age items
	$(RLDF_FID_ENV) STAGES="01_data 02_rm 04_merge 05_rl 06_predict" bash rldf/scripts/run_all.sh
	pids=(); for seed in $(RLDF_RL_SEEDS); do $(RLDF_FID_ENV) OMP_NUM_THREADS=$(if $(word 2,$(RLDF_RL_SEEDS)),1,$(THREADS)) RL_SEED=$$seed STAGES=05_rl \
	  bash rldf/scripts/run_all.sh & pids+=($$!); done; for pid in "$${pids[@]}"; do wait $$pid || exit 1; done
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$(THREADS) $(PY) -m rldf.fidelity --config rldf/configs/fidelity.yaml \
	  --section fidelity run_root=$(RUNS)/rldf/fidelity \
	  rl_runs=$(call yaml_list,rl $(addprefix rl_seed,$(RLDF_RL_SEEDS)))
