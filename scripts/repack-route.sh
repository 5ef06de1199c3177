# Sourced by the scripts that run llama.cpp's own tools beside llama-sweep.
# llama.cpp's repacked kernels crash on some CPUs (its AMX kernels on some
# Xeons, ggml-org/llama.cpp#20824). llama-sweep's backend self-test notices
# it and forces repack = false on every trial; the tools it is compared
# with must then run the same plain kernels, or they crash.
#
#   route_around_repack CMD ARG...   runs the command (a tiny workload of a
#                                    tool, repacking on); when a signal kills
#                                    it, says so and sets the flags below.
#   BENCH_REPACK    llama-bench's flags for it:  (--repack 0) or ()
#   COMMON_REPACK   the other tools' flags:      (--no-repack) or ()
BENCH_REPACK=()
COMMON_REPACK=()
route_around_repack() {
  local rc=0
  "$@" >/dev/null 2>&1 || rc=$?
  if [ "$rc" -ge 128 ]; then
    echo "note: llama.cpp's repacked kernels crash on this CPU ($(basename "$1") died of signal $((rc - 128))):" \
      "every tool runs with repacking off, as llama-sweep's backend self-test forces on its trials" >&2
    BENCH_REPACK=(--repack 0)
    COMMON_REPACK=(--no-repack)
  fi
}
