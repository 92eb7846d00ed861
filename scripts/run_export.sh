#!/usr/bin/env bash
# Export a checkpoint: run_export.sh CONFIG CHECKPOINT [MINDIR|ONNX|OPENVINO|AIR] [extra export.py flags]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 CONFIG CHECKPOINT [MINDIR|ONNX|OPENVINO|AIR] [--key value ...]"
config=$1
ckpt=$2
shift 2
format=MINDIR
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
  format=$1; shift
fi
case "$format" in MINDIR | ONNX | OPENVINO | AIR) ;; *) die "format must be MINDIR, ONNX, OPENVINO or AIR, got '$format'" ;; esac
config=$(config_arg "$config")
require_file "$ckpt" "checkpoint"
ckpt=$(abspath "$ckpt")
launch "$PYTHON" "$REPO_ROOT/export.py" --config "$config" --pretrained "$ckpt" --file_format "$format" "$@"
