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

pcrm-fidelity: $(PREPARED) ## PCRM RM variants on HH-RLHF and SST-2 pairs, MiniLM RM on CPU (~20 min): margins vs accuracy
	HF_HUB_OFFLINE=1 $(PY) -m pcrm.data --config $(PCRM_FID_CFG) --section data_sst2 output_dir=$(PCRM_FID)/sst2/data $(PCRM_OVERWRITE)
	HF_HUB_OFFLINE=1 $(PY) -m pcrm.variants --config $(PCRM_FID_CFG) --section variants_sst2 \
	  data_dir=$(PCRM_FID)/sst2/data output_dir=$(PCRM_FID)/sst2/variants $(PCRM_OVERWRITE)
	HF_HUB_OFFLINE=1 $(PY) -m pcrm.data --config $(PCRM_FID_CFG) --section data_hh output_dir=$(PCRM_FID)/hh/data $(PCRM_OVERWRITE)
	HF_HUB_OFFLINE=1 $(PY) -m pcrm.variants --config $(PCRM_FID_CFG) --section variants_hh \
	  data_dir=$(PCRM_FID)/hh/data output_dir=$(PCRM_FID)/hh/variants $(PCRM_OVERWRITE)
