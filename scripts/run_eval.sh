#!/usr/bin/env bash
# Evaluate a checkpoint on the config's device_target: run_eval.sh CONFIG CHECKPOINT [--key value ...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 CONFIG CHECKPOINT [--key value ...]"
config=$1 ckpt=$2
shift 2
run_eval "" "$config" "$ckpt" "${DEVICE_ID:-0}" "$@"
