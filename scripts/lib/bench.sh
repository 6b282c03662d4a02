# shellcheck shell=bash
# What the benchmarks that run containers share (scripts/bench/coldstart.sh, vllm_cpu.sh): the
# engine and container helpers, and one clean-up for the container and the image a benchmark
# made.
#
#   bench_traps   on exit, SIGINT (130) or SIGTERM (143): remove the container CID and the
#                 image BUILT_IMAGE (either may be empty), then release the engine
#
# A library: functions and the two globals only, no options set, safe under `set -u`.

_BENCH_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/docker_engine.sh
source "${_BENCH_LIB_DIR}/docker_engine.sh"
# shellcheck source=scripts/lib/container.sh
source "${_BENCH_LIB_DIR}/container.sh"

# The container the benchmark runs now and the image it built for itself ("" when none).
CID=""
BUILT_IMAGE=""

# Install the clean-up traps.
# Globals:   CID, BUILT_IMAGE (read by the trap when it runs)
bench_traps() {
  trap _bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# EXIT trap: remove the running container and the image the benchmark built; release the
# engine; keep the exit status.
# Globals:   CID, BUILT_IMAGE (read)
_bench_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [[ -z "${CID}" ]] || container_remove "${CID}"
  [[ -z "${BUILT_IMAGE}" ]] || container_docker image rm -f "${BUILT_IMAGE}" >/dev/null 2>&1 ||
    true # already gone
  docker_engine_stop || true # it reports why
  exit "${status}"
}
