"""Human annotation for RLCHF: rank K responses or pick A / B in a small web app; export into rlchf's ballot files.

``python -m rlchf.annotate load|invite|serve|status|export|compare``; see rlchf/README.md ("Human annotators").
"""
