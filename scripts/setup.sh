#!/usr/bin/env bash
# Installs what building llama-sweep needs and is missing (cmake, clang and
# libclang for llama.cpp's build, on Debian/Ubuntu via apt-get) and what the
# tests need (slurm-wlm and munge: the cluster test starts a real one-node
# SLURM), then fetches the demo model into models/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "please install: ${need[*]} (and a Rust toolchain), then run this again" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if ! command -v slurmctld >/dev/null && command -v apt-get >/dev/null; then
  echo "installing slurm-wlm and munge with apt-get (for the cluster test)"
  if [ "$(id -u)" -eq 0 ]; then scripts/slurm-local.sh install; else sudo scripts/slurm-local.sh install; fi
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust from https://rustup.rs" >&2; exit 1; }

scripts/fetch-demo-model.sh
scripts/make-moe-model.sh
