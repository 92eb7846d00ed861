#!/usr/bin/env bash
# Evaluate an exported ONNX file with onnxruntime (Twins GPU readme's script name):
#   run_eval_onnx.sh MODEL.onnx [CONFIG] [--key value ...]
# The export's sidecar JSON gives the preprocessing; CONFIG (or --data_url) gives the validation data.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 1 "$0 MODEL.onnx [CONFIG] [--key value ...]"
model=$1
shift
require_file "$model" "ONNX model"
config=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  path=$(config_arg "$1")
  config=(--config "$path")
  shift
fi
launch "$PYTHON" "$REPO_ROOT/eval.py" --backend onnx --model "$model" "${config[@]}" "$@"
