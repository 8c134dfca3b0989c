#!/usr/bin/env bash
# Set up everything and run the whole test suite (lint, types, tests). .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
export AIIDA_PATH=${AIIDA_PATH:-$(mktemp -d)}
ruff check src tests benchmarks scripts examples
ruff format --check src tests benchmarks scripts examples
mypy
pytest -q -p no:cacheprovider "$@"
if [ $# -eq 0 ]; then
    # the daemon + fault tests: PostgreSQL + RabbitMQ (installed and started here if missing), 2 daemon workers
    bash scripts/setup_services.sh start
    pytest -q -p no:cacheprovider -m daemon tests/daemon
fi
