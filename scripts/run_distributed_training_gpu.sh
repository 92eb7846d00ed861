#!/usr/bin/env bash
# Data-parallel training (Twins GPU readme): run_distributed_training_gpu.sh DEVICE_TARGET DEVICE_NUM CONFIG "DEVICE_IDS" [--key value ...]
# e.g. run_distributed_training_gpu.sh GPU 4 configs/twins/svt_small.yaml "0,1,2,3". msrun, as run_distribute_train.sh.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 4 "$0 GPU|Ascend|CPU DEVICE_NUM CONFIG \"DEVICE_IDS\" [--key value ...]"
case "$1" in GPU | Ascend | CPU) ;; *) die "DEVICE_TARGET must be GPU, Ascend or CPU, got '$1'" ;; esac
target=$1 NUM_DEVICES=$2 config=$3 DEVICE_IDS=$4
shift 4
require_positive_int "$NUM_DEVICES" "DEVICE_NUM"
parse_seed_options --num_devices "$NUM_DEVICES" --device_ids "$DEVICE_IDS"
device_count
config=$(config_arg "$config")
data_parallel_train "$NUM_DEVICES" "$config" --device_target "$target" "$@"
