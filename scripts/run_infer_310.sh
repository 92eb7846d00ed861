#!/usr/bin/env bash
# The TNT seed's Ascend 310 accuracy run, on this machine's CPU: the exported MindIR evaluated on a labelled
# folder with MindSpore (eval.py --backend mindir), top-1/top-5 printed and written to acc.log.
#   run_infer_310.sh MINDIR_PATH DATASET_NAME DATASET_PATH [DEVICE_ID]
# DATASET_NAME: imagenet2012 (a folder of class sub-folders). DATASET_PATH: that folder, or a dataset root
# holding val/. DEVICE_ID is accepted and unused (the CPU runs it).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 3 "$0 MINDIR_PATH DATASET_NAME DATASET_PATH [DEVICE_ID]"
[ $# -le 4 ] || die "at most 4 arguments: MINDIR_PATH DATASET_NAME DATASET_PATH [DEVICE_ID]"
model=$1 name=$2 data=$3
require_file "$model" "MindIR"
case "$name" in imagenet2012 | imagenet) ;; *) die "DATASET_NAME must be imagenet2012, got '$name'" ;; esac
[ -d "$data" ] || die "dataset folder not found: $data"
[ $# -lt 4 ] || require_uint "$4" "DEVICE_ID"
if [ -d "$data/val" ]; then split=(--data_url "$data"); else split=(--val_dir "$data"); fi
launch_logged acc.log "$PYTHON" "$REPO_ROOT/eval.py" --backend mindir --model "$model" --device_target CPU \
  "${split[@]}" --output acc.json
