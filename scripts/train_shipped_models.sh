#!/usr/bin/env bash
# Retrain the three shipped models from scratch, then evaluate them on the held-out structure types.
# CPU is fine (about 1 h on 2 quiet cores); a GPU is used when present (training.device: auto).
# Writes src/aiida_matembed/resources/models/matembed_{cmml,xrd_symmetry,xrd_vae}.{safetensors,json}.
# Data as shipped: xrd_vae on the 10,000 decorated training prototypes (seed 0; it uses 5,000); cmml and
# xrd_symmetry on those plus 4,000 pyxtal synthetic crystals (seed 0, held-out types rejected; ~16 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
CONFIGS=src/aiida_matembed/resources/models/configs
python scripts/build_training_set.py decorated --n 10000 --seed 0
python scripts/build_training_set.py synthetic --n 4000 --seed 0 --jobs 2
python scripts/build_training_set.py join   # -> data/train.npz (decorated + synthetic)
python -m aiida_matembed.core.models.training "$CONFIGS/xrd_vae.yaml" --data data/train_decorated.npz --no-progress
for model in cmml xrd_symmetry; do
    python -m aiida_matembed.core.models.training "$CONFIGS/$model.yaml" --data data/train.npz --no-progress
done
python benchmarks/eval_models.py --n 1500 --update-cards
