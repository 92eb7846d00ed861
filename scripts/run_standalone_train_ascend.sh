#!/usr/bin/env bash
# One-Ascend training (the Twins and TNT readmes): run_standalone_train_ascend.sh DEVICE_ID CONFIG [--key value ...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 DEVICE_ID CONFIG [--key value ...]"
is_uint "$1" || die "DEVICE_ID must be a non-negative integer, got '$1'"
device=$(device_id_arg "$1") config=$2
shift 2
run_train Ascend "$config" "$device" "$@"
