#!/usr/bin/env bash
# Data-parallel training with msrun (GPU or CPU): run_distribute_train.sh NUM_DEVICES CONFIG [extra flags]
# MASTER_PORT (default 8118) picks the scheduler port; logs go to logs/msrun-<time>/worker_N.log.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 NUM_DEVICES CONFIG [--key value ...]"
num=$1
config=$(abspath "$2")
shift 2
require_positive_int "$num" "NUM_DEVICES"
require_file "$config" "config"
command -v msrun >/dev/null 2>&1 || die "msrun not found (it ships with mindspore; activate its environment)"
log_dir=$(make_log_dir msrun)
echo "msrun: $num workers, logs in $log_dir"
cd "$REPO_ROOT"
msrun --worker_num="$num" --local_worker_num="$num" --master_port="${MASTER_PORT:-8118}" \
  --log_dir="$log_dir" --join=True train.py --config "$config" "$@"
