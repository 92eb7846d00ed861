#!/usr/bin/env bash
# Classify images with an exported ONNX file (Twins GPU readme's script name):
#   run_infer_onnx.sh MODEL.onnx INPUT [OUTPUT_JSON] [--key value ...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 MODEL.onnx INPUT [OUTPUT_JSON] [--key value ...]"
model=$1 input=$2
shift 2
require_file "$model" "ONNX model"
[ -e "$input" ] || die "input not found: $input"
output="predictions.json"
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  output=$1
  shift
fi
launch "$PYTHON" "$REPO_ROOT/infer.py" --backend onnx --model "$model" --input "$input" --output "$output" "$@"
