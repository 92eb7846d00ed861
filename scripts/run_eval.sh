#!/usr/bin/env bash
# Evaluate a checkpoint: run_eval.sh CONFIG CHECKPOINT [extra eval.py flags]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 CONFIG CHECKPOINT [--key value ...]"
config=$(abspath "$1")
ckpt=$(abspath "$2")
shift 2
require_file "$config" "config"
require_file "$ckpt" "checkpoint"
cd "$REPO_ROOT"
"$PYTHON" eval.py --config "$config" --pretrained "$ckpt" "$@"
