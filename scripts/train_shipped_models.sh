#!/usr/bin/env bash
# Retrain the three shipped models from scratch, then evaluate them on the held-out structure types.
# CPU is fine (about 1.5 h on 2 cores); a GPU is used when present (training.device: auto).
# Writes src/aiida_matembed/resources/models/matembed_{cmml,xrd_symmetry,xrd_vae}.{safetensors,json}.
# The shipped v1 models were trained on the decorated training prototypes only (10,000, seed 0); to add pyxtal
# synthetic crystals: `python scripts/build_training_set.py synthetic --n N`, then `... join` and --data data/train.npz.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
CONFIGS=src/aiida_matembed/resources/models/configs
python scripts/build_training_set.py decorated --n 10000 --seed 0
for model in cmml xrd_symmetry xrd_vae; do
    python -m aiida_matembed.core.models.training "$CONFIGS/$model.yaml" --data data/train_decorated.npz --no-progress
done
python benchmarks/eval_models.py --update-cards
