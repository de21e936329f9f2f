import sys
from pathlib import Path

# tests run with --import-mode=importlib (basenames repeat across folders), so this folder's helper module
# scripted_debate.py is importable only if the folder is on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
