#!/usr/bin/env bash
# One-GPU training (Twins GPU readme): run_standalone_training_gpu.sh [CONFIG] [--key value ...]
# Without CONFIG it trains the readme's example recipe, Twins-SVT-S (configs/twins/svt_small.yaml).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
config="$REPO_ROOT/configs/twins/svt_small.yaml"
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  config=$1
  shift
fi
echo "config: $config"
run_train GPU "$config" "${DEVICE_ID:-0}" "$@"
