#!/usr/bin/env bash
# Installs what building llama-sweep needs and is missing (cmake, clang and
# libclang for llama.cpp's build, on Debian/Ubuntu via apt-get) and what the
# tests need (slurm-wlm and munge: the cluster test starts a real one-node
# SLURM), then fetches the demo model into models/ and writes the tests' tiny
# MoE models. Safe to run again.
#
# It says one line per step. What apt-get, pip and the scripts it runs print
# goes to target/setup.log; when a step fails, the last lines of that log are
# shown and it exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

log=target/setup.log
mkdir -p target
echo "# scripts/setup.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$log"
echo "details: $log"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# step WHAT CMD...: prints "WHAT ... ", runs CMD with its output in the log
# (and, for the caller to summarize, in $out), and ends the line with "done";
# or shows the log's last lines and exits.
# (Errexit does not act inside CMD here: a function must chain with &&.)
step() {
  local what=$1 rc start
  shift
  printf '%s ... ' "$what"
  printf '\n## %s: %s\n' "$what" "$*" >>"$log"
  start=$(wc -l <"$log")
  if "$@" >>"$log" 2>&1; then
    tail -n +"$((start + 1))" "$log" >"$out"
    [ -n "${quiet_done:-}" ] || echo done
    return 0
  else
    rc=$?
  fi
  echo "failed"
  {
    echo "--- last lines of $log:"
    tail -n 30 "$log"
    echo "---"
    echo "setup failed: ${what} (exit status $rc); the whole log: $log"
  } >&2
  exit "$rc"
}

# step_said SED WHAT CMD...: like step, but ends the line with the lines of
# CMD's output that the sed script SED prints (sed -n; paths made relative to
# this folder), joined by ", ".
step_said() {
  local script=$1
  shift
  quiet_done=1 step "$@"
  sed -n -e "s|$PWD/||g" -e "$script" "$out" | paste -sd '\t' - | sed 's/\t/, /g'
}

sudo=""
as_root() {
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "$*: needs root, and there is no sudo: run this as root" >&2; exit 1; }
    sudo=sudo
    sudo -v   # asks for the password here, not in the middle of a step
  fi
}

apt_install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

need=() present=()
if command -v cmake >/dev/null; then present+=(cmake); else need+=(cmake); fi
if command -v clang >/dev/null; then present+=(clang); else need+=(clang); fi
if ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then present+=(libclang-dev); else need+=(libclang-dev); fi
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "please install: ${need[*]} (and a Rust toolchain), then run this again" >&2
    exit 1
  fi
  as_root "installing ${need[*]}"
  step "installing ${need[*]} (apt-get)" apt_install "${need[@]}"
fi
if command -v slurmctld >/dev/null; then
  present+=(slurm-wlm munge)
elif command -v apt-get >/dev/null; then
  as_root "installing slurm-wlm munge"
  step "installing slurm-wlm munge (apt-get, for the cluster test)" $sudo scripts/slurm-local.sh install
else
  echo "slurm-wlm and munge are not installed and there is no apt-get: the cluster test will fail"
fi
[ ${#present[@]} -eq 0 ] || echo "already installed: ${present[*]}"
command -v cargo >/dev/null || { echo "cargo is missing: install Rust from https://rustup.rs" >&2; exit 1; }

step_said 's/^demo model //p' "demo model" scripts/fetch-demo-model.sh
step_said 's/^test MoE model \([a-z]*\): \([^ ]*\).*/\2 \1/p' "test MoE models" scripts/make-moe-model.sh
