#!/usr/bin/env bash
# Classify images with a checkpoint: run_infer.sh CONFIG CHECKPOINT INPUT [OUTPUT_JSON] [--key value ...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 3 "$0 CONFIG CHECKPOINT INPUT [OUTPUT_JSON] [--key value ...]"
config=$1 ckpt=$2 input=$3
shift 3
output="predictions.json"
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
  output=$1
  shift
fi
config=$(config_arg "$config")
require_file "$ckpt" "checkpoint"
[ -e "$input" ] || die "input not found: $input"
launch "$PYTHON" "$REPO_ROOT/infer.py" --config "$config" --pretrained "$ckpt" --input "$input" --output "$output" "$@"
