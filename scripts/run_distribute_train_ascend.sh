#!/usr/bin/env bash
# Ascend training from an HCCL rank table, one process per device listed in it:
#   run_distribute_train_ascend.sh RANK_TABLE_FILE CONFIG [extra flags]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 RANK_TABLE_FILE CONFIG [--key value ...]"
require_file "$1" "rank table"
rank_table=$(abspath "$1")
config=$(config_arg "$2")
shift 2
# "device_id rank_id" per line for this server, from the rank table (mszoo/tools/rank_table.py checks it).
devices=$(cd "$REPO_ROOT" && "$PYTHON" -m mszoo.tools.rank_table "$rank_table") || die "cannot use rank table $rank_table"
rank_size=$(cd "$REPO_ROOT" && "$PYTHON" -m mszoo.tools.rank_table --size "$rank_table")
log_dir=$(make_log_dir ascend)
echo "rank table: $rank_size devices in all; logs in $log_dir/rank_N"
export RANK_TABLE_FILE="$rank_table" RANK_SIZE="$rank_size"
pids=()
while read -r device_id rank_id; do
  mkdir -p "$log_dir/rank_$rank_id"
  if dry_run; then
    show_launch env DEVICE_ID="$device_id" RANK_ID="$rank_id" "$PYTHON" "$REPO_ROOT/train.py" --config "$config" \
      --device_target Ascend --device_id "$device_id" "$@"
    continue
  fi
  DEVICE_ID=$device_id RANK_ID=$rank_id "$PYTHON" "$REPO_ROOT/train.py" --config "$config" --device_target Ascend \
    --device_id "$device_id" "$@" >"$log_dir/rank_$rank_id/train.out" 2>&1 &
  pids+=($!)
done <<<"$devices"
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=$?
done
exit "$status"
