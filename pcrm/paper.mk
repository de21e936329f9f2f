# PCRM (arXiv 2404.00978): prior-constraint reward models. Targets below; `make help` lists them.
PCRM_TINY_CFG   := pcrm/configs/tiny.yaml
PCRM_FID_CFG    := pcrm/configs/fidelity.yaml
PCRM_OVERWRITE   = $(if $(filter true,$(OVERWRITE)),overwrite=true)
PCRM_FID         = $(RUNS)/pcrm/fidelity

.PHONY: pcrm-tiny pcrm-llama2 pcrm-fidelity

# tiny: all five RM variants; DPO, PPO and the judge for len_rat only (each policy stage is a few processes)
pcrm-tiny: $(PREPARED) ## PCRM on the embedded models: data, SFT, all five RM variants (table), PCRM-DPO, PPO, eval
	HF_HUB_OFFLINE=1 CONFIG=$(PCRM_TINY_CFG) RUNS=$(RUNS) OVERWRITE=$(OVERWRITE) PY=$(PY) MODEL=tiny POLICY_VARIANTS=len_rat \
	  bash pcrm/scripts/run_all.sh

# llama2: SFT, RM variants and DPO start under LAUNCH (NUM_GPUS processes), PPO with RL_ENGINE (Makefile)
pcrm-llama2: $(PREPARED) ## PCRM on Llama-2-7B, both tasks and all variants (TASK=dialogue|tldr VARIANT=... to narrow)
	CONFIG=pcrm/configs/llama2.yaml RUNS=$(RUNS) OVERWRITE=$(OVERWRITE) PY=$(PY) MODEL=llama2 \
	  TASKS="$(or $(TASK),dialogue tldr)" VARIANTS="$(or $(VARIANT),baseline len_rat cos_sim random fixed)" \
	  $(call LAUNCH_ENV,pcrm/configs/llama2.yaml) bash pcrm/scripts/run_all.sh

# sets trained in parallel under make -j2; seeds per set, as many as fit ~1 h on the shared 2-core machine (an HH RM
# costs ~3x an SST-2 one); more seeds: PCRM_SST2_SEEDS="0 1 2" etc.
PCRM_SST2_SEEDS ?= 0 1
PCRM_HH_SEEDS   ?= 0
PCRM_FID_TRAIN   = HF_HUB_OFFLINE=1 $(PY) -m pcrm.fidelity train --config $(PCRM_FID_CFG) \
                   $(if $(filter true,$(OVERWRITE)),--overwrite)

pcrm-fidelity: pcrm-fidelity-sst2 pcrm-fidelity-hh ## PCRM RM variants x seeds on SST-2 and HH-RLHF pairs (MiniLM RM, CPU): claims.json with intervals
	HF_HUB_OFFLINE=1 $(PY) -m pcrm.fidelity claims --root $(PCRM_FID) --sets sst2 hh

.PHONY: pcrm-fidelity-sst2 pcrm-fidelity-hh
pcrm-fidelity-sst2: $(PREPARED) ## PCRM fidelity, SST-2 half: every RM variant x PCRM_SST2_SEEDS on 500 held-out pairs
	HF_HUB_OFFLINE=1 $(PY) -m pcrm.data --config $(PCRM_FID_CFG) --section data_sst2 output_dir=$(PCRM_FID)/sst2/data $(PCRM_OVERWRITE)
	$(PCRM_FID_TRAIN) --section variants_sst2 --data $(PCRM_FID)/sst2/data --out $(PCRM_FID)/sst2 --seeds $(PCRM_SST2_SEEDS)

pcrm-fidelity-hh: $(PREPARED) ## PCRM fidelity, HH-RLHF half: every RM variant x PCRM_HH_SEEDS, no per-epoch eval
	HF_HUB_OFFLINE=1 $(PY) -m pcrm.data --config $(PCRM_FID_CFG) --section data_hh output_dir=$(PCRM_FID)/hh/data $(PCRM_OVERWRITE)
	$(PCRM_FID_TRAIN) --section variants_hh --data $(PCRM_FID)/hh/data --out $(PCRM_FID)/hh --seeds $(PCRM_HH_SEEDS) \
	  --no-epoch-eval
