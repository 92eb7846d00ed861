#!/usr/bin/env bash
# Data-parallel training with msrun on the config's device_target (GPU, Ascend or CPU). Two forms:
#   run_distribute_train.sh NUM_DEVICES CONFIG [--key value ...]                                    (this project)
#   run_distribute_train.sh CONFIG --num_devices N [--device_ids 0,1,..] [--checkpoint CKPT] [--extra ARGS...]  (T2T readme)
# Several machines: the same command on each, with NNODES, NODE_RANK, MASTER_ADDR (node 0) and MASTER_PORT
# (default 8118); NUM_DEVICES counts the devices of one machine. LAUNCHER=mpirun uses OpenMPI (one machine).
# Logs: logs/msrun-node<NODE_RANK>-<time>/worker_N.log.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
distribute_train "" "$0 NUM_DEVICES CONFIG [--key value ...]  |  $0 CONFIG --num_devices N [--device_ids 0,1,..] [--checkpoint CKPT] [--extra ARGS...]" "$@"
