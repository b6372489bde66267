#!/usr/bin/env bash
# The GPU check of the full profile (issue 14): run from the repository root on a machine with one
# NVIDIA GPU, offline; about 3 minutes on an H200 (under 8). Results: benchmarks/results/.
#   benchmarks/gpu_check.sh            # measure on the GPU
#   benchmarks/gpu_check.sh --smoke    # test the script on the CPU at tiny sizes (measures nothing)
# Python: the repository's .venv when present; else a python3 that already has torch and open_clip;
# else a new .venv installed from requirements.txt with pip (needs a package index).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif python3 -c 'import torch, open_clip, pandas, PIL' 2>/dev/null; then
  PY=python3
else
  echo "no .venv and no python3 with torch/open_clip: creating .venv from requirements.txt" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -r requirements.txt
  PY=.venv/bin/python
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$PY" benchmarks/gpu_check.py "$@"
