#!/usr/bin/env bash
# Data-parallel training on GPUs with OpenMPI: run_distribute_train_gpu.sh NUM_DEVICES CONFIG [extra flags]
# MindSpore's NCCL backend reads the OpenMPI rank variables; train.py initialises communication itself.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
usage_if_needed $# 2 "$0 NUM_DEVICES CONFIG [--key value ...]"
num=$1
config=$(abspath "$2")
shift 2
require_positive_int "$num" "NUM_DEVICES"
require_file "$config" "config"
command -v mpirun >/dev/null 2>&1 || die "mpirun not found (install OpenMPI)"
log_dir=$(make_log_dir mpirun)
echo "mpirun: $num processes, log: $log_dir/train.out"
cd "$REPO_ROOT"
mpirun -n "$num" --allow-run-as-root --output-filename "$log_dir/mpi" --merge-stderr-to-stdout \
  "$PYTHON" train.py --config "$config" --device_target GPU "$@" 2>&1 | tee "$log_dir/train.out"
