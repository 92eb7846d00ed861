#!/usr/bin/env bash
# Evaluate on an Ascend device (the Twins and TNT readmes): run_eval_ascend.sh DEVICE_ID CONFIG CHECKPOINT [--key value ...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 3 "$0 DEVICE_ID CONFIG CHECKPOINT [--key value ...]"
is_uint "$1" || die "DEVICE_ID must be a non-negative integer, got '$1'"
device=$(device_id_arg "$1") config=$2 ckpt=$3
shift 3
run_eval Ascend "$config" "$ckpt" "$device" "$@"
