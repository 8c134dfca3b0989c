#!/usr/bin/env bash
# Set up everything and run the main job on a dedicated local AiiDA profile (SQLite, no services).
# The profile lives in its own AiiDA config folder (.aiida/ in this checkout unless AIIDA_PATH is set),
# so the user's other profiles and their default profile are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
export AIIDA_PATH=${AIIDA_PATH:-$PWD/.aiida}
PROFILE=${MATEMBED_PROFILE:-matembed-quickstart}
if ! verdi profile show "$PROFILE" >/dev/null 2>&1; then
    verdi presto --profile-name "$PROFILE" --non-interactive
fi
echo "AiiDA config: AIIDA_PATH=$AIIDA_PATH, profile $PROFILE"
python -m aiida_matembed.quickstart --profile "$PROFILE"
echo
echo "To look around:  export AIIDA_PATH=$AIIDA_PATH; . .venv/bin/activate; verdi -p $PROFILE data matembed --help"
