#!/usr/bin/env bash
# One-device training: run_standalone_train.sh CONFIG [DEVICE_ID] [extra train.py flags]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 1 "$0 CONFIG [DEVICE_ID] [--key value ...]"
config=$(abspath "$1"); shift
require_file "$config" "config"
device_id=0
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
  case "$1" in '' | *[!0-9]*) die "DEVICE_ID must be a non-negative integer, got '$1'" ;; esac
  device_id=$1; shift
fi
log_dir=$(make_log_dir standalone)
echo "training on device $device_id; log: $log_dir/train.out"
cd "$REPO_ROOT"
DEVICE_ID=$device_id "$PYTHON" train.py --config "$config" --device_id "$device_id" "$@" 2>&1 | tee "$log_dir/train.out"
