#!/usr/bin/env bash
# Create the project's virtual environment (.venv) and install aiida-matembed with its dev extra.
# torch is installed FIRST from the local CPU build (torch==2.13.0); pip then sees the requirement
# satisfied and never pulls the multi-GB CUDA wheels (see shared FACTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
if ! python -c 'import torch' 2>/dev/null; then
    python -m pip install -q "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
fi
python -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
python -c 'import aiida_matembed, torch; print(f"environment ready: aiida-matembed {aiida_matembed.__version__}, torch {torch.__version__}")'
