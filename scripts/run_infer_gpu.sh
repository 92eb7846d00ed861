#!/usr/bin/env bash
# Classify an image or a folder on a GPU (T2T-ViT readme):
#   run_infer_gpu.sh INPUT --checkpoint CKPT [--arch NAME] [--output JSON (default predictions.json)] [--extra ARGS...]
# The checkpoint's own record gives the model and preprocessing; --arch, when given, must agree with it.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 1 "$0 INPUT --checkpoint CKPT [--arch NAME] [--output JSON] [--extra ARGS...]"
require_positional "the image or folder" "$1"
input=$1
shift
[ -e "$input" ] || die "input not found: $input"
parse_seed_options "$@"
require_checkpoint_option "the weights to run"
output=(--output predictions.json)
for arg in "${PASS_ARGS[@]}"; do
  [ "$arg" != --output ] || output=()
done
device=$(device_id_arg "$DEVICE")
launch env DEVICE_ID="$device" "$PYTHON" "$REPO_ROOT/infer.py" --input "$input" --pretrained "$CHECKPOINT" \
  --device_target GPU --device_id "$device" "${output[@]}" "${PASS_ARGS[@]}"
