#!/usr/bin/env bash
# Evaluate on a GPU (the T2T-ViT and Twins GPU readmes): run_eval_gpu.sh CONFIG --checkpoint CKPT [--device N] [--extra ARGS...]
# --checkpoint is the weights to evaluate (eval.py --pretrained); --extra --device_target CPU overrides the GPU.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 1 "$0 CONFIG --checkpoint CKPT [--device N] [--extra ARGS...]"
require_positional "the config file" "$1"
config=$1
shift
parse_seed_options "$@"
require_checkpoint_option "the weights to evaluate"
run_eval GPU "$config" "$CHECKPOINT" "$(device_id_arg "$DEVICE")" "${PASS_ARGS[@]}"
