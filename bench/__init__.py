"""Throughput benchmark of every training stage (SFT, RM, DPO, PPO), ours against TRL's; see bench/README.md."""
