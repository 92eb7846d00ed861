#!/usr/bin/env bash
# Shared helpers for the launch scripts (sourced, not run).

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

require_positive_int() {
  case "$1" in
    '' | *[!0-9]*) die "$2 must be a positive integer, got '$1'" ;;
  esac
  [ "$1" -gt 0 ] || die "$2 must be a positive integer, got '$1'"
}

abspath() {
  (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")")
}

# make_log_dir NAME: a fresh directory under ./logs for this launch, printed on stdout.
make_log_dir() {
  local dir
  dir="${LOG_ROOT:-$PWD/logs}/$1-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$dir"
  echo "$dir"
}
