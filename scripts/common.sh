#!/usr/bin/env bash
# Shared helpers for the launch scripts (sourced, not run).
#
# Every script ends in `launch COMMAND...`. With MSZOO_DRY_RUN=1 that prints the device the command runs on (one
# `device: ...` line) and the command (shell-quoted, the last line) instead of running it: the tests check each
# script's translation of the model-zoo readmes' arguments this way, including launchers this machine lacks (GPUs, Ascend,
# mpirun). Scripts named for a device (_gpu, _ascend) pass --device_target; the others leave it to the config,
# whose default is auto (Ascend, else GPU, else CPU, whichever the installed MindSpore can use).

# Repository root (the folder holding train.py), whatever the caller's working directory.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
PYTHON="${PYTHON:-python}"
export GLOG_v="${GLOG_v:-3}"

die() {
  echo "error: $*" >&2
  exit 2
}

# usage_if_needed COUNT MIN USAGE: print USAGE and exit 2 when fewer than MIN arguments were given.
usage_if_needed() {
  if [ "$1" -lt "$2" ]; then
    echo "usage: $3" >&2
    exit 2
  fi
}

require_file() {
  [ -f "$1" ] || die "$2 not found: $1"
}

is_uint() {
  case "$1" in '' | *[!0-9]*) return 1 ;; esac
  return 0
}

require_uint() {
  is_uint "$1" || die "$2 must be a non-negative integer, got '$1'"
}

require_positive_int() {
  is_uint "$1" && [ "$1" -gt 0 ] || die "$2 must be a positive integer, got '$1'"
}

# dry_run: true under MSZOO_DRY_RUN=1 (see above).
dry_run() {
  [ "${MSZOO_DRY_RUN:-0}" = 1 ]
}

# require_positional WHAT VALUE: the script's first argument must be a value, not a flag.
require_positional() {
  [[ "$2" != -* ]] || die "the first argument is $1, got '$2'"
}

# config_arg CONFIG: what to pass as --config: an existing file (made absolute), else CONFIG itself when it names a
# shipped recipe (twins/svt_small) or a model-zoo readme's recipe (../src/configs/t2t_vit_19.yaml: the program uses ours and
# says how it differs), else one error line.
config_arg() {
  if [ -f "$1" ]; then
    abspath "$1"
  elif PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m mszoo.recipes "$1"; then
    echo "$1"
  else
    die "config not found: $1 (nor a shipped or model-zoo readme recipe name)"
  fi
}

abspath() {
  (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")")
}

# make_log_dir NAME: a fresh directory under ./logs for this launch, printed on stdout.
make_log_dir() {
  local dir
  dir="${LOG_ROOT:-$PWD/logs}/$1-$(date +%Y%m%d-%H%M%S)"
  dry_run || mkdir -p "$dir"
  echo "$dir"
}

# launch COMMAND...: run it (or print it, see above). Commands run in the caller's directory (relative paths
# in flags mean what they mean to the caller) and name the entry scripts by their full path.
launch() {
  if dry_run; then
    show_launch "$@"
    exit 0
  fi
  "$@"
}

# device_line COMMAND...: the device COMMAND runs on: the last --device_target it passes, else the config's.
device_line() {
  local target=""
  while [ $# -gt 0 ]; do
    if [ "$1" = --device_target ] && [ $# -ge 2 ]; then target=$2; fi
    shift
  done
  if [ -n "$target" ]; then
    echo "device: $target (--device_target $target)"
  else
    echo "device: the config's device_target, by default auto (Ascend, else GPU, else CPU: whichever this MindSpore can use)"
  fi
}

# show_launch COMMAND...: the dry run's device line and command.
show_launch() {
  device_line "$@"
  show_command "$@"
}

show_command() {
  printf '%q ' "$@"
  echo
}

# parse_seed_options ARGS...: the T2T-ViT readme's launcher options, anywhere after the positional arguments:
#   --device N, --num_devices N, --device_ids 0,1,.., --checkpoint FILE, --extra ARGS... (the rest, verbatim).
# Sets DEVICE, NUM_DEVICES, DEVICE_IDS, CHECKPOINT and PASS_ARGS (--extra's and any other --key value: they go
# to the Python script, which checks them).
parse_seed_options() {
  DEVICE="" NUM_DEVICES="" DEVICE_IDS="" CHECKPOINT=""
  PASS_ARGS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --device | --num_devices | --device_ids | --checkpoint)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
          --device) DEVICE=$2 ;;
          --num_devices) NUM_DEVICES=$2 ;;
          --device_ids) DEVICE_IDS=$2 ;;
          --checkpoint) CHECKPOINT=$2 ;;
        esac
        shift 2
        ;;
      --extra)
        shift
        PASS_ARGS+=("$@")
        break
        ;;
      *)
        PASS_ARGS+=("$1")
        shift
        ;;
    esac
  done
  [ -z "$DEVICE" ] || require_uint "$DEVICE" "--device"
  [ -z "$NUM_DEVICES" ] || require_positive_int "$NUM_DEVICES" "--num_devices"
  if [ -n "$DEVICE_IDS" ]; then
    [[ "$DEVICE_IDS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--device_ids must look like 0,1,2,3, got '$DEVICE_IDS'"
  fi
  [ -z "$CHECKPOINT" ] || require_file "$CHECKPOINT" "checkpoint"
  if [ -n "$CHECKPOINT" ]; then CHECKPOINT=$(abspath "$CHECKPOINT"); fi
}

# device_id_arg GIVEN: the device id a one-device script uses: GIVEN (its DEVICE_ID argument or --device), with a
# note on stderr when an exported DEVICE_ID differs; else the exported DEVICE_ID; else 0.
device_id_arg() {
  if [ -z "$1" ]; then
    echo "${DEVICE_ID:-0}"
    return
  fi
  if [ -n "${DEVICE_ID:-}" ] && [ "$DEVICE_ID" != "$1" ]; then
    echo "note: device $1 (given) is used, not the environment's DEVICE_ID=$DEVICE_ID" >&2
  fi
  echo "$1"
}

# require_checkpoint_option WHY: eval/infer scripts need --checkpoint (the weights to run).
require_checkpoint_option() {
  [ -n "$CHECKPOINT" ] || die "--checkpoint CKPT is required ($1)"
}

# device_count: NUM_DEVICES, checked against / taken from DEVICE_IDS.
device_count() {
  local listed=0
  if [ -n "$DEVICE_IDS" ]; then
    listed=$(tr ',' '\n' <<<"$DEVICE_IDS" | wc -l)
  fi
  if [ -z "$NUM_DEVICES" ]; then
    [ "$listed" -gt 0 ] || die "give --num_devices N or --device_ids 0,1,.."
    NUM_DEVICES=$listed
  elif [ "$listed" -gt 0 ] && [ "$listed" -ne "$NUM_DEVICES" ]; then
    die "--num_devices $NUM_DEVICES but --device_ids lists $listed devices ($DEVICE_IDS)"
  fi
}

# visible_devices_env IDS: the environment that restricts a run to these devices (GPU and Ascend alike).
visible_devices_env() {
  if [ -n "$1" ]; then
    echo "CUDA_VISIBLE_DEVICES=$1"
    echo "ASCEND_RT_VISIBLE_DEVICES=$1"
  fi
}

# data_parallel_train NUM CONFIG [train.py args]: NUM training processes on this machine, with msrun (default)
# or OpenMPI (LAUNCHER=mpirun). Several machines (msrun): run the same command on each with NNODES (machines,
# default 1), NODE_RANK (this machine, 0..NNODES-1), MASTER_ADDR (node 0's address, default 127.0.0.1) and
# MASTER_PORT (default 8118); NUM is the number of processes per machine. DEVICE_IDS limits the devices.
data_parallel_train() {
  local num=$1 config=$2
  shift 2
  local nnodes=${NNODES:-1} node_rank=${NODE_RANK:-0} addr=${MASTER_ADDR:-127.0.0.1} port=${MASTER_PORT:-8118}
  require_positive_int "$nnodes" "NNODES"
  require_uint "$node_rank" "NODE_RANK"
  [ "$node_rank" -lt "$nnodes" ] || die "NODE_RANK must be below NNODES ($nnodes), got $node_rank"
  require_positive_int "$port" "MASTER_PORT"
  local envs
  mapfile -t envs < <(visible_devices_env "${DEVICE_IDS:-}")
  case "${LAUNCHER:-msrun}" in
    msrun)
      dry_run || command -v msrun >/dev/null 2>&1 ||
        die "msrun not found (it ships with mindspore; activate its environment)"
      local log_dir total=$((num * nnodes))
      log_dir=$(make_log_dir "msrun-node$node_rank")
      echo "msrun: $num workers on this machine (node $node_rank of $nnodes, $total in all), scheduler" \
        "$addr:$port; logs in $log_dir"
      launch env GLOG_v="$GLOG_v" "${envs[@]}" msrun --worker_num="$total" --local_worker_num="$num" \
        --master_addr="$addr" --master_port="$port" --node_rank="$node_rank" --log_dir="$log_dir" --join=True \
        "$REPO_ROOT/train.py" --config "$config" "$@"
      ;;
    mpirun)
      [ "$nnodes" = 1 ] || die "LAUNCHER=mpirun starts one machine; use msrun (the default) with NNODES"
      dry_run || command -v mpirun >/dev/null 2>&1 || die "mpirun not found (install OpenMPI)"
      local log_dir
      log_dir=$(make_log_dir mpirun)
      echo "mpirun: $num processes; logs in $log_dir"
      launch env GLOG_v="$GLOG_v" "${envs[@]}" mpirun -n "$num" --allow-run-as-root \
        --output-filename "$log_dir/mpi" --merge-stderr-to-stdout "$PYTHON" "$REPO_ROOT/train.py" --config "$config" "$@"
      ;;
    *) die "LAUNCHER must be msrun or mpirun, got '$LAUNCHER'" ;;
  esac
}

# distribute_train DEVICE_TARGET ARGS...: run_distribute_train*.sh. Two forms, told apart by the first argument:
#   NUM_DEVICES CONFIG [--key value ...]                                   (this project)
#   CONFIG [--num_devices N] [--device_ids 0,1,..] [--checkpoint CKPT] [--extra ARGS...]   (T2T-ViT readme)
# DEVICE_TARGET empty: the config's. --checkpoint continues that run (--resume), as the readme says.
distribute_train() {
  local target=$1 usage=$2
  shift 2
  usage_if_needed $# 1 "$usage"
  local config num=""
  if is_uint "$1"; then
    usage_if_needed $# 2 "$usage"
    num=$1
    config=$2
    shift 2
    require_positive_int "$num" "NUM_DEVICES"
  else
    require_positional "the config file (or NUM_DEVICES)" "$1"
    config=$1
    shift
  fi
  config=$(config_arg "$config")
  parse_seed_options "$@"
  if [ -n "$num" ]; then
    [ -z "$NUM_DEVICES" ] || [ "$NUM_DEVICES" = "$num" ] || die "NUM_DEVICES $num but --num_devices $NUM_DEVICES"
    NUM_DEVICES=$num
  fi
  device_count
  local args=()
  [ -z "$target" ] || args+=(--device_target "$target")
  [ -z "$CHECKPOINT" ] || args+=(--resume "$CHECKPOINT")
  data_parallel_train "$NUM_DEVICES" "$config" "${args[@]}" "${PASS_ARGS[@]}"
}

# standalone_train DEVICE_TARGET ARGS...: run_standalone_train*.sh. CONFIG [DEVICE_ID] [--device N]
# [--checkpoint CKPT] [--extra ARGS... | --key value ...]: the project's and the T2T-ViT readme's forms.
standalone_train() {
  local target=$1 usage=$2
  shift 2
  usage_if_needed $# 1 "$usage"
  require_positional "the config file" "$1"
  local config=$1 device=""
  shift
  if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
    is_uint "$1" || die "DEVICE_ID must be a non-negative integer, got '$1'"
    device=$1
    shift
  fi
  parse_seed_options "$@"
  [ -z "$DEVICE" ] || device=$DEVICE
  device=$(device_id_arg "$device")
  run_train "$target" "$config" "$device" "${PASS_ARGS[@]}"
}

# run_train DEVICE_TARGET CONFIG DEVICE_ID [train.py args]: one training process, its output also in a log.
run_train() {
  local target=$1 config=$2 device=$3
  shift 3
  config=$(config_arg "$config")
  local args=(--config "$config" --device_id "$device")
  [ -z "$target" ] || args+=(--device_target "$target")
  [ -z "${CHECKPOINT:-}" ] || args+=(--resume "$CHECKPOINT")
  local log_dir
  log_dir=$(make_log_dir standalone)
  echo "training on device $device; log: $log_dir/train.out"
  launch_logged "$log_dir/train.out" env DEVICE_ID="$device" "$PYTHON" "$REPO_ROOT/train.py" "${args[@]}" "$@"
}

# launch_logged LOG COMMAND...: launch, with the output also written to LOG; the command's exit code.
launch_logged() {
  local log=$1
  shift
  if dry_run; then
    launch "$@"
  fi
  set +e
  "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  return "$status"
}

# run_eval DEVICE_TARGET CONFIG CHECKPOINT DEVICE_ID [eval.py args]
run_eval() {
  local target=$1 config=$2 ckpt=$3 device=$4
  shift 4
  config=$(config_arg "$config")
  require_file "$ckpt" "checkpoint"
  local args=(--config "$config" --pretrained "$(abspath "$ckpt")" --device_id "$device")
  [ -z "$target" ] || args+=(--device_target "$target")
  launch env DEVICE_ID="$device" "$PYTHON" "$REPO_ROOT/eval.py" "${args[@]}" "$@"
}
