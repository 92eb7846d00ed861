#!/usr/bin/env bash
# Data-parallel training on GPUs (msrun; LAUNCHER=mpirun for OpenMPI). Two forms, as run_distribute_train.sh:
#   run_distribute_train_gpu.sh NUM_DEVICES CONFIG [--key value ...]
#   run_distribute_train_gpu.sh CONFIG [--num_devices N] [--device_ids 0,1,..] [--checkpoint CKPT] [--extra ARGS...]  (T2T readme)
# NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT: several machines (see run_distribute_train.sh).
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
distribute_train GPU "$0 NUM_DEVICES CONFIG [--key value ...]  |  $0 CONFIG --num_devices N [--device_ids 0,1,..] [--checkpoint CKPT] [--extra ARGS...]" "$@"
