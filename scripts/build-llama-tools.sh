#!/usr/bin/env bash
# Builds llama.cpp's own tools for the parity scripts (compare-llama-bench.sh,
# compare-depth-and-parallel.sh, compare-llama-perplexity.sh) and the
# llama-server that `llama-sweep verify` is tested against, from the same
# llama.cpp llama-sweep links. Later calls bring them up to date (nothing is
# compiled when nothing changed) and print where they are.
#
# The tool sources: the llama-cpp-sys-2 crate that llama-sweep links ships
# none, so tools/llama-bench, tools/batched-bench, tools/perplexity,
# tools/quantize and tools/server (with tools/mtmd, tools/ui's build files and
# scripts/ui-assets.cmake) come from PyPI's llama-cpp-python source
# distribution (vendor/llama.cpp/...), copied into a copy of the crate's tree
# (target/llama-bench/src; files copied only when they changed, so nothing is
# rebuilt for nothing). The server is built without its web UI (no download),
# with the sdist's tools/mtmd (the crate's has another API) and, where the
# crate's common lacks it, one helper its sources call
# (tools/server-compat.h).
#
# Three ways to build them, the first that works:
# 1. Linked (target/llama-bench/build): only the tools' own sources are
#    compiled; they link the very libraries (libllama, ggml, common, httplib)
#    that llama-cpp-sys-2's build script compiled for llama-sweep (found with
#    `cargo build --release --message-format=json`), with the defines those
#    were compiled with. No second compile of llama.cpp, and llama-bench runs
#    the same machine code as llama-sweep's trials.
# 2. From the crate's source (target/llama-bench/build-full): llama.cpp
#    compiled again, with the tools added to its cmake tree.
# 3. From the whole PyPI tree (target/llama-bench/build-pypi): its llama.cpp
#    version may differ from llama-sweep's; the line on stderr says so.
#
# Usage: scripts/build-llama-tools.sh [TARGET ...]
#   TARGET: llama-bench, llama-batched-bench, llama-perplexity, llama-quantize,
#           llama-server (default: llama-bench llama-batched-bench)
#   stdout: each target's binary, one absolute path a line, in the order asked
#   stderr: for each, which llama.cpp it was built from; the build log is
#           target/llama-bench/build-tools.log
#   JOBS=N  parallel compile jobs (default: nproc)
# Needs: cmake, a C++ compiler, python3 with pip, cargo.
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

# The cmake build folder of the llama.cpp that llama-cpp-sys-2's build script
# compiled for llama-sweep (cargo builds it first if needed); empty when
# cargo cannot say.
sys2_build() {
  (cd "$root" && cargo build --release --locked --message-format=json 2>>"$log") | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "llama-cpp-sys-2" in m["package_id"]:
        print(m["out_dir"] + "/build")' || true
}
# The libraries a linked build takes from that folder, in link order.
sys2_libs=(common/libllama-common.a common/libllama-common-base.a vendor/cpp-httplib/libcpp-httplib.a
           src/libllama.a ggml/src/libggml.a ggml/src/libggml-cpu.a ggml/src/libggml-base.a)

# The binary of a target, linked build first; empty when there is none.
binary_of() {
  local d
  for d in build build-full build-pypi; do
    if [ -x "$work/$d/bin/$1" ]; then echo "$work/$d/bin/$1"; return; fi
  done
}

mkdir -p "$work"
sys_build="$(log="$work/cargo.log" sys2_build)"
for lib in "${sys2_libs[@]}"; do
  [ -n "$sys_build" ] && [ -f "$sys_build/$lib" ] || { sys_build=""; break; }
done
[ -n "$sys_build" ] || echo "llama-cpp-sys-2's build of llama.cpp not found (see $log): the tools compile llama.cpp again" >&2

# A build folder configured from another root (a full build of an older
# version of this script) is started again.
if [ -n "$sys_build" ] && [ -f "$work/build/CMakeCache.txt" ] &&
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$work/linked-src" "$work/build/CMakeCache.txt"; then
  rm -rf "$work/build"
fi

missing=()
for t in "${targets[@]}"; do
  bin="$(binary_of "$t")"
  # A linked tool whose libraries were built again since is linked again.
  if [ -z "$bin" ] || { [ -n "$sys_build" ] && [ "$bin" = "$work/build/bin/$t" ] &&
       [ -n "$(cd "$sys_build" && find "${sys2_libs[@]}" -newer "$bin" 2>/dev/null)" ]; }; then
    missing+=("$t")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  for tool in cmake python3 cargo; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs what the build needs)"
  done
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
  full=()

  # 1. Linked: a root of our own (links to the copied tree's folders) whose
  #    llama, ggml, llama-common and cpp-httplib are llama-cpp-sys-2's
  #    libraries, compiled with the defines those were compiled with.
  if [ -n "$sys_build" ]; then
    linked="$work/linked-src"
    mkdir -p "$linked"
    for entry in cmake common ggml include scripts tools vendor; do
      ln -sfn "../src/$entry" "$linked/$entry"
    done
    defines="$(sed -n 's/^CXX_DEFINES = //p' "$sys_build/common/CMakeFiles/llama-common.dir/flags.make" 2>/dev/null |
               tr ' ' '\n' | sed -n 's/^-D//p' | paste -sd ';' -)"
    cat > "$linked/CMakeLists.txt.new" <<'CMAKE'
# llama.cpp's tools linked against the llama.cpp libraries llama-cpp-sys-2
# built for llama-sweep (LLAMA_SYS_BUILD), compiled with their defines
# (LLAMA_SYS_DEFINES). Written by scripts/build-llama-tools.sh.
cmake_minimum_required(VERSION 3.14)
project("llama-sweep-tools" C CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_SOURCE_DIR}/cmake/")
set(LLAMA_VERSION_MAJOR 0)
set(LLAMA_VERSION_MINOR 6)
set(LLAMA_VERSION_PATCH 0)
set(LLAMA_VERSION_BASE "${LLAMA_VERSION_MAJOR}.${LLAMA_VERSION_MINOR}.${LLAMA_VERSION_PATCH}")
set(LLAMA_SUBPROCESS ON)
set(LLAMA_ALL_WARNINGS ON)
include(cmake/build-info.cmake)
include(cmake/common.cmake)
set(LLAMA_BUILD_NUMBER ${BUILD_NUMBER})
set(LLAMA_BUILD_COMMIT ${BUILD_COMMIT})
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED)
add_compile_definitions(${LLAMA_SYS_DEFINES})
foreach(dir hash miniaudio nlohmann sheredom stb)
    add_subdirectory(vendor/${dir})
endforeach()
set(B "${LLAMA_SYS_BUILD}")
add_library(ggml INTERFACE)
target_include_directories(ggml INTERFACE ${CMAKE_SOURCE_DIR}/ggml/include)
target_link_libraries(ggml INTERFACE ${B}/ggml/src/libggml.a ${B}/ggml/src/libggml-cpu.a
    ${B}/ggml/src/libggml-base.a OpenMP::OpenMP_CXX Threads::Threads m dl)
add_library(llama INTERFACE)
target_include_directories(llama INTERFACE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(llama INTERFACE ${B}/src/libllama.a ggml)
add_library(cpp-httplib INTERFACE)
target_include_directories(cpp-httplib INTERFACE ${CMAKE_SOURCE_DIR}/vendor)
target_link_libraries(cpp-httplib INTERFACE ${B}/vendor/cpp-httplib/libcpp-httplib.a Threads::Threads)
if ("CPPHTTPLIB_OPENSSL_SUPPORT" IN_LIST LLAMA_SYS_DEFINES)
    find_package(OpenSSL REQUIRED)
    target_link_libraries(cpp-httplib INTERFACE OpenSSL::SSL OpenSSL::Crypto)
endif()
add_library(llama-common INTERFACE)
target_include_directories(llama-common INTERFACE ${CMAKE_SOURCE_DIR}/common)
target_link_libraries(llama-common INTERFACE ${B}/common/libllama-common.a
    ${B}/common/libllama-common-base.a cpp-httplib vendor::nlohmann vendor::sheredom llama)
add_subdirectory(tools)
CMAKE
    put "$linked/CMakeLists.txt.new" "$linked/CMakeLists.txt"
    rm -f "$linked/CMakeLists.txt.new"
    echo "== configure $linked against $sys_build" >>"$log"
    if cmake -S "$linked" -B "$work/build" "${flags[@]}" -DLLAMA_SYS_BUILD="$sys_build" \
         -DLLAMA_SYS_DEFINES="$defines" >>"$log" 2>&1; then
      for t in "${missing[@]}"; do
        echo "== build $t linked to $sys_build" >>"$log"
        rm -f "$work/build/bin/$t"
        if cmake --build "$work/build" --target "$t" -j "$jobs" >>"$log" 2>&1; then
          echo "linked to the llama.cpp libraries $sys_version built for llama-sweep ($sys_build)" \
            > "$work/build/origin-$t.txt"
        else
          full+=("$t")
        fi
      done
      printf '%s\n' "${sys2_libs[@]/#/$sys_build/}" > "$work/build/link-libraries.txt"
      grep -q CPPHTTPLIB_OPENSSL_SUPPORT <<<"$defines" && printf '%s\n' -lssl -lcrypto >> "$work/build/link-libraries.txt"
    else
      full=("${missing[@]}")
    fi
  else
    full=("${missing[@]}")
  fi
  [ ${#full[@]} -eq 0 ] || [ -z "$sys_build" ] ||
    echo "${full[*]}: did not link against llama-cpp-sys-2's libraries (see $log); compiling llama.cpp again" >&2

  # 2. From the crate's source, llama.cpp compiled again.
  configured=false
  pypi=()
  if [ ${#full[@]} -gt 0 ]; then
    echo "== configure $work/src" >>"$log"
    cmake -S "$work/src" -B "$work/build-full" "${flags[@]}" >>"$log" 2>&1 && configured=true
    for t in "${full[@]}"; do
      echo "== build $t from $work/src" >>"$log"
      if $configured && cmake --build "$work/build-full" --target "$t" -j "$jobs" >>"$log" 2>&1; then
        echo "built from $sys_version's llama.cpp ($sys_dir), compiled again" > "$work/build-full/origin-$t.txt"
      else
        pypi+=("$t")
      fi
    done
    b="$work/build-full"
    printf '%s\n' "$b/common/libllama-common.a" "$b/common/libllama-common-base.a" \
      "$b/vendor/cpp-httplib/libcpp-httplib.a" "$b/src/libllama.a" "$b/ggml/src/libggml.a" \
      "$b/ggml/src/libggml-cpu.a" "$b/ggml/src/libggml-base.a" > "$b/link-libraries.txt"
  fi
  # 3. From PyPI's whole tree.
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
