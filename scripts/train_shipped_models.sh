#!/usr/bin/env bash
# Retrain the three shipped models from scratch, then evaluate them on the held-out structure types.
# CPU is fine (about 1 h on 2 quiet cores); a GPU is used when present (training.device: auto).
# Writes src/aiida_matembed/resources/models/matembed_{cmml,xrd_symmetry,xrd_vae}.{safetensors,json}.
# Data as shipped: cmml and xrd_symmetry on the 10,000 decorated training prototypes (seed 0) plus 4,000 pyxtal
# synthetic crystals (seed 0, held-out types rejected; ~16 min on 2 cores); xrd_vae on those plus 6,000 more
# synthetic crystals (seed 1; ~33 min on one core).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
CONFIGS=src/aiida_matembed/resources/models/configs
python scripts/build_training_set.py decorated --n 10000 --seed 0
python scripts/build_training_set.py synthetic --n 4000 --seed 0 --jobs 2
python scripts/build_training_set.py synthetic --n 6000 --seed 1 --jobs 2
python scripts/build_training_set.py join --synthetic-seeds 0 --output train_seed0.npz   # 14,000 structures
python scripts/build_training_set.py join --synthetic-seeds 0,1                          # 20,000: data/train.npz
for model in cmml xrd_symmetry; do
    python -m aiida_matembed.core.models.training "$CONFIGS/$model.yaml" --data data/train_seed0.npz --no-progress
done
python -m aiida_matembed.core.models.training "$CONFIGS/xrd_vae.yaml" --data data/train.npz --no-progress
python benchmarks/eval_models.py --n 1500 --update-cards
