#!/usr/bin/env bash
# Builds llama.cpp's own tools for the parity scripts (compare-llama-bench.sh,
# compare-depth-and-parallel.sh, compare-llama-perplexity.sh) and the
# llama-server that `llama-sweep verify` is tested against, from the same
# llama.cpp source llama-sweep links, once: later calls only build what is
# missing and print where it is.
#
# 1. The llama.cpp tree vendored by the llama-cpp-sys-2 crate that llama-sweep
#    links (found with `cargo metadata`), copied to target/llama-bench/src.
#    That crate ships no tool sources, so those (tools/llama-bench,
#    tools/batched-bench, tools/perplexity, tools/quantize, tools/server with
#    tools/mtmd, tools/ui's build files and scripts/ui-assets.cmake) come from PyPI's llama-cpp-python source distribution
#    (vendor/llama.cpp/...), and a tools/CMakeLists.txt that adds exactly
#    these: one cmake configure in target/llama-bench/build serves every
#    tool, and its libraries are the ones scripts/check-llama-server-args.sh
#    links against. The server is built without its web UI (no download),
#    with the sdist's tools/mtmd (the crate's has another API) and, where
#    the crate's common lacks it, one helper its sources call
#    (tools/server-compat.h): its llama.cpp (libllama, ggml, common) is
#    llama-sweep's, only the HTTP front end is the sdist's. Files are copied
#    only when they changed, so nothing is rebuilt for nothing.
# 2. A tool that does not compile against that tree is built instead from the
#    whole PyPI tree, in target/llama-bench/build-pypi (its llama.cpp version
#    may differ from llama-sweep's; the line on stderr says so).
#
# Usage: scripts/build-llama-tools.sh [TARGET ...]
#   TARGET: llama-bench, llama-batched-bench, llama-perplexity, llama-quantize,
#           llama-server (default: llama-bench llama-batched-bench)
#   stdout: each target's binary, one absolute path a line, in the order asked
#   stderr: for each, which llama.cpp it was built from; the build log is
#           target/llama-bench/build-tools.log
#   JOBS=N  parallel compile jobs (default: nproc)
# Needs: cmake, a C++ compiler, python3 with pip, cargo (for `cargo metadata`).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/target/llama-bench"
lcp_version="0.3.36"
jobs="${JOBS:-$(nproc)}"
log="$work/build-tools.log"

die() { echo "build-llama-tools.sh: $*" >&2; exit 1; }

declare -A tool_dir=(
  [llama-bench]=llama-bench
  [llama-batched-bench]=batched-bench
  [llama-perplexity]=perplexity
  [llama-quantize]=quantize
  [llama-server]=server
)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(llama-bench llama-batched-bench)
for t in "${targets[@]}"; do
  [ -n "${tool_dir[$t]:-}" ] || die "unknown target '$t' (known: ${!tool_dir[*]})"
done

# The binary of a target, sys-2 build first; empty when there is none.
binary_of() {
  local d
  for d in build build-pypi; do
    if [ -x "$work/$d/bin/$1" ]; then echo "$work/$d/bin/$1"; return; fi
  done
}

missing=()
for t in "${targets[@]}"; do
  [ -n "$(binary_of "$t")" ] || missing+=("$t")
done

if [ ${#missing[@]} -gt 0 ]; then
  for tool in cmake python3 cargo; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs what the build needs)"
  done
  mkdir -p "$work"
  : > "$log"
  echo "building ${missing[*]} (log: $log) ..." >&2

  # PyPI's llama-cpp-python sdist: the tool sources (and the fallback tree).
  if [ ! -d "$work/sdist/vendor/llama.cpp/tools" ]; then
    rm -rf "$work/sdist" "$work/dl"
    python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$work/dl" \
      "llama-cpp-python==$lcp_version" >>"$log" 2>&1 ||
      die "could not download llama-cpp-python==$lcp_version's source from PyPI (see $log)"
    mkdir -p "$work/sdist"
    tar -xzf "$work"/dl/llama_cpp_python-*.tar.gz -C "$work/sdist" --strip-components=1
  fi
  pypi_tools="$work/sdist/vendor/llama.cpp/tools"

  # llama-cpp-sys-2's vendored llama.cpp, as cargo resolves it.
  sys_dir="$(cd "$root" && cargo metadata --format-version 1 --locked 2>>"$log" | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
pkg = next(p for p in meta["packages"] if p["name"] == "llama-cpp-sys-2")
print(os.path.join(os.path.dirname(pkg["manifest_path"]), "llama.cpp"))')" ||
    die "cargo metadata did not find the llama-cpp-sys-2 crate (see $log; a first \`cargo fetch\` may be needed)"
  [ -f "$sys_dir/CMakeLists.txt" ] || die "no llama.cpp tree in $sys_dir"

  # The tree, copied again only when llama-sweep links another one.
  if [ "$(cat "$work/src/.copied-from" 2>/dev/null)" != "$sys_dir" ]; then
    rm -rf "$work/src"
    cp -r "$sys_dir" "$work/src"
    echo "$sys_dir" > "$work/src/.copied-from"
  fi
  put() { # SRC DEST: copy unless identical (keeps mtimes, so no rebuild)
    cmp -s "$1" "$2" 2>/dev/null || cp "$1" "$2"
  }
  put_tree() { # SRC DEST: every file of SRC into DEST, copied only when it changed
    (cd "$1" && find . -type f) | while read -r f; do
      mkdir -p "$(dirname "$2/$f")"
      put "$1/$f" "$2/$f"
    done
  }
  subdirs=""
  for dir in llama-bench batched-bench perplexity quantize ui server; do
    [ -d "$pypi_tools/$dir" ] || die "no tools/$dir in llama-cpp-python $lcp_version's sdist"
    mkdir -p "$work/src/tools/$dir"
    for f in "$pypi_tools/$dir"/*.cpp "$pypi_tools/$dir"/*.h "$pypi_tools/$dir/CMakeLists.txt" \
             "$pypi_tools/$dir"/*.in "$pypi_tools/$dir/sources.cmake"; do
      [ -e "$f" ] && put "$f" "$work/src/tools/$dir/$(basename "$f")"
    done
    # The server's multimodal library comes with it: the crate's own
    # tools/mtmd has another API than the server's sources expect.
    if [ "$dir" = ui ]; then
      put_tree "$pypi_tools/mtmd" "$work/src/tools/mtmd"
      subdirs+="add_subdirectory(mtmd)"$'\n'
    fi
    subdirs+="add_subdirectory($dir)"$'\n'
  done
  mkdir -p "$work/src/scripts"
  put "$pypi_tools/../scripts/ui-assets.cmake" "$work/src/scripts/ui-assets.cmake"
  # The server's sources call a common helper the crate's common lacks:
  # one inline definition, given to those sources only.
  if ! grep -q fs_open_ifstream "$work/src/common/common.h"; then
    cat > "$work/src/tools/server-compat.h.new" <<'CPP'
// llama-server's sources (llama-cpp-python's sdist) call a common helper that
// llama-cpp-sys-2's common lacks; scripts/build-llama-tools.sh gives this
// header to those sources only.
#pragma once
#include <fstream>
#include <string>
inline std::ifstream fs_open_ifstream(const std::string & fname, std::ios_base::openmode mode) {
    return std::ifstream(fname, mode);
}
CPP
    put "$work/src/tools/server-compat.h.new" "$work/src/tools/server-compat.h"
    rm -f "$work/src/tools/server-compat.h.new"
    for t in server-context llama-server-impl; do
      subdirs+="target_compile_options($t PRIVATE -include \${CMAKE_CURRENT_SOURCE_DIR}/server-compat.h)"$'\n'
    done
  fi
  printf 'find_package(Threads REQUIRED)\nllama_add_compile_flags()\n%s' "$subdirs" > "$work/tools.cmake.new"
  put "$work/tools.cmake.new" "$work/src/tools/CMakeLists.txt"
  rm -f "$work/tools.cmake.new"

  flags=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DBUILD_SHARED_LIBS=OFF
         -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON
         -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
         -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF)
  sys_version="$(basename "$(dirname "$sys_dir")")"
  configured=false
  echo "== configure $work/src" >>"$log"
  cmake -S "$work/src" -B "$work/build" "${flags[@]}" >>"$log" 2>&1 && configured=true
  pypi=()
  for t in "${missing[@]}"; do
    echo "== build $t from $work/src" >>"$log"
    if $configured && cmake --build "$work/build" --target "$t" -j "$jobs" >>"$log" 2>&1; then
      echo "built from $sys_version's llama.cpp ($sys_dir)" > "$work/build/origin-$t.txt"
    else
      pypi+=("$t")
    fi
  done
  if [ ${#pypi[@]} -gt 0 ]; then
    echo "${pypi[*]}: did not build against llama-cpp-sys-2's llama.cpp (see $log);" \
         "building PyPI llama-cpp-python $lcp_version's own llama.cpp instead (versions may differ)" >&2
    echo "== configure $work/sdist/vendor/llama.cpp" >>"$log"
    cmake -S "$work/sdist/vendor/llama.cpp" -B "$work/build-pypi" "${flags[@]}" >>"$log" 2>&1 ||
      { tail -20 "$log" >&2; die "cmake could not configure PyPI's llama.cpp either (see $log)"; }
    for t in "${pypi[@]}"; do
      echo "== build $t from PyPI's llama.cpp" >>"$log"
      cmake --build "$work/build-pypi" --target "$t" -j "$jobs" >>"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "$t did not build from PyPI's llama.cpp either (see $log)"; }
      echo "built from llama-cpp-python $lcp_version's vendored llama.cpp (may differ from llama-sweep's)" \
        > "$work/build-pypi/origin-$t.txt"
    done
  fi
fi

for t in "${targets[@]}"; do
  bin="$(binary_of "$t")"
  [ -n "$bin" ] || die "$t is missing after the build (see $log)"
  build_dir="$(dirname "$(dirname "$bin")")"
  origin="$(cat "$build_dir/origin-$t.txt" 2>/dev/null ||
            cat "$work/source.txt" 2>/dev/null ||
            echo "origin not recorded (built before build-llama-tools.sh)")"
  echo "$t: $origin" >&2
  echo "$bin"
done
