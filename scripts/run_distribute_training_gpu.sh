#!/usr/bin/env bash
# The name in the Twins GPU readme's file list (its text says run_distributed_training_gpu.sh): the same script.
#   run_distribute_training_gpu.sh DEVICE_TARGET DEVICE_NUM CONFIG "DEVICE_IDS" [--key value ...]
set -euo pipefail
exec bash "$(dirname "$0")/run_distributed_training_gpu.sh" "$@"
