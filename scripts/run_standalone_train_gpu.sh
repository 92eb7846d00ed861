#!/usr/bin/env bash
# One-GPU training (T2T-ViT readme): run_standalone_train_gpu.sh CONFIG [--device N] [--checkpoint CKPT] [--extra ARGS...]
# --checkpoint continues that run (train.py --resume); --extra --device_target CPU overrides the GPU.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
standalone_train GPU "$0 CONFIG [--device N] [--checkpoint CKPT] [--extra ARGS...]" "$@"
