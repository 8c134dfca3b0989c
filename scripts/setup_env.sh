#!/usr/bin/env bash
# Create the project's virtual environment (.venv) and install aiida-matembed with its dev extra.
# torch is installed FIRST from the local CPU build (torch==2.13.0); pip then sees the requirement
# satisfied and never pulls the multi-GB CUDA wheels (see shared FACTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Quantum ESPRESSO (pw.x) and Debian's pseudopotentials, for the DFT workflows and their tests.
if ! command -v pw.x >/dev/null 2>&1 || [ ! -d /usr/share/espresso/pseudo ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing Quantum ESPRESSO (apt-get: quantum-espresso quantum-espresso-data)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            quantum-espresso quantum-espresso-data >/dev/null
    else
        echo "pw.x is missing: install Quantum ESPRESSO (Debian: apt-get install quantum-espresso quantum-espresso-data);" \
            "the DFT workflows need it" >&2
    fi
fi
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
