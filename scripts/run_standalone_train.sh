#!/usr/bin/env bash
# One-device training on the config's device_target. Two forms (README, "Coming from the model-zoo readmes"):
#   run_standalone_train.sh CONFIG [DEVICE_ID] [--key value ...]                           (this project)
#   run_standalone_train.sh CONFIG [--device N] [--checkpoint CKPT] [--extra ARGS...]      (T2T-ViT readme)
# --checkpoint continues that run (train.py --resume).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
standalone_train "" "$0 CONFIG [DEVICE_ID | --device N] [--checkpoint CKPT] [--extra ARGS... | --key value ...]" "$@"
