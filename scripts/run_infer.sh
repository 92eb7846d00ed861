#!/usr/bin/env bash
# Classify images: run_infer.sh CONFIG CHECKPOINT INPUT [OUTPUT_JSON] [extra infer.py flags]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 3 "$0 CONFIG CHECKPOINT INPUT [OUTPUT_JSON] [--key value ...]"
config=$(abspath "$1")
ckpt=$(abspath "$2")
input=$(abspath "$3")
shift 3
output="predictions.json"
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
  output=$1; shift
fi
require_file "$config" "config"
require_file "$ckpt" "checkpoint"
[ -e "$input" ] || die "input not found: $input"
output=$(abspath "$output")
cd "$REPO_ROOT"
"$PYTHON" infer.py --config "$config" --pretrained "$ckpt" --input "$input" --output "$output" "$@"
