#!/usr/bin/env bash
# The TNT readme's Ascend 310 accuracy run, here with MindSpore: the exported MindIR evaluated on a labelled folder
# (eval.py --backend mindir), top-1/top-5 printed and written to acc.log.
#   run_infer_310.sh MINDIR_PATH DATASET_NAME DATASET_PATH [DEVICE_ID] [ARCH | --arch NAME] [--key value ...]
# DATASET_NAME: imagenet2012 (a folder of class sub-folders). DATASET_PATH: that folder, or a dataset root
# holding val/. The device is auto (Ascend, else GPU, else CPU). A MindIR exported by export.py has a sidecar
# (NAME.mindir.json) that names its model; one exported elsewhere (the readme's) needs ARCH for its preprocessing.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage="$0 MINDIR_PATH DATASET_NAME DATASET_PATH [DEVICE_ID] [ARCH | --arch NAME] [--key value ...]"
usage_if_needed $# 3 "$usage"
model=$1 name=$2 data=$3
shift 3
require_file "$model" "MindIR"
case "$name" in imagenet2012 | imagenet) ;; *) die "DATASET_NAME must be imagenet2012, got '$name'" ;; esac
[ -d "$data" ] || die "dataset folder not found: $data"
args=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  require_uint "$1" "DEVICE_ID"
  args+=(--device_id "$1")
  shift
fi
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  args+=(--arch "$1")
  shift
fi
[ $# -eq 0 ] || [[ "$1" == -* ]] || die "unexpected argument '$1' (usage: $usage)"
if [ -d "$data/val" ]; then split=(--data_url "$data"); else split=(--val_dir "$data"); fi
launch_logged acc.log "$PYTHON" "$REPO_ROOT/eval.py" --backend mindir --model "$model" "${split[@]}" \
  "${args[@]}" --output acc.json "$@"
