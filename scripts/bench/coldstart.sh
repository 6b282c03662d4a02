#!/usr/bin/env bash
# Usage:   scripts/bench/coldstart.sh [--help] [IMAGE]
# Summary: Cold start of the tool image: from `docker run` to the first 2xx /healthz,
#          COLDSTART_RUNS times (default 10), then the median and the max, split into
#            engine     docker run until the container's process starts (State.StartedAt)
#            bootstrap  main.sh start until it execs uvicorn (its "starting the server" line)
#            app        uvicorn start until the first 2xx /healthz seen from the host
#          Without IMAGE it builds the demo's image first (scripts/demo.sh with
#          DEMO_KEEP_IMAGE=1, DEMO_TAG=tool-coldstart) and removes it at the end.
#          Not part of the test suite; takes about a minute after the build.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
# shellcheck source=scripts/lib/docker_engine.sh
source "${ROOT}/scripts/lib/docker_engine.sh"
# shellcheck source=scripts/lib/container.sh
source "${ROOT}/scripts/lib/container.sh"
LOG_PREFIX="[coldstart]"

CID=""
BUILT_IMAGE=""

# Print the Usage/Summary block above.
usage() {
  sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# Remove the running container and the image this script built; release the engine.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [[ -z "${CID}" ]] || container_remove "${CID}"
  [[ -z "${BUILT_IMAGE}" ]] || container_docker image rm -f "${BUILT_IMAGE}" >/dev/null 2>&1 ||
    true # already gone
  docker_engine_stop || true # it reports why
  exit "${status}"
}

# Seconds since the epoch of an RFC 3339 time stamp with nanoseconds (docker's format).
# Arguments: timestamp
epoch_of() {
  date -d "$1" +%s.%N
}

# One cold start; prints "total engine bootstrap app" in seconds.
# Arguments: image
measure_once() {
  local image="$1" port t0 t1 started uvicorn
  port="$(container_free_port)"
  t0="${EPOCHREALTIME}"
  CID="$(container_start "${image}" "${port}")"
  container_wait_2xx "http://127.0.0.1:${port}/healthz" 120 "${CID}"
  t1="${EPOCHREALTIME}"
  started="$(epoch_of "$(container_docker inspect -f '{{.State.StartedAt}}' "${CID}")")"
  uvicorn="$(container_docker logs -t "${CID}" 2>&1 | awk '/starting the server:/ { print $1; exit }')"
  if [[ -z "${uvicorn}" ]]; then
    log_err "no 'starting the server' line in the container's log; is ${image} a stack image?"
    return 1
  fi
  uvicorn="$(epoch_of "${uvicorn}")"
  container_remove "${CID}"
  CID=""
  awk -v t0="${t0}" -v t1="${t1}" -v s="${started}" -v u="${uvicorn}" \
    'BEGIN { printf "%.3f %.3f %.3f %.3f\n", t1 - t0, s - t0, u - s, t1 - u }'
}

main() {
  case "${1:-}" in
    -h | --help) usage; return 0 ;;
  esac
  local image="${1:-}" runs="${COLDSTART_RUNS:-10}"
  if [[ ! "${runs}" =~ ^[1-9][0-9]*$ ]]; then
    log_err "COLDSTART_RUNS '${runs}' is not valid; use a whole number above 0 (default 10)"
    return 1
  fi
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ -z "${image}" ]]; then
    log_section "building the demo image (scripts/demo.sh, DEMO_KEEP_IMAGE=1)"
    DEMO_KEEP_IMAGE=1 DEMO_TAG=tool-coldstart "${ROOT}/scripts/demo.sh" >/dev/null
    image="${IMAGE_REPO:-yap-text-api}:tool-coldstart"
    BUILT_IMAGE="${image}"
  fi
  docker_engine_up
  TEXT_API_KEY="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export TEXT_API_KEY
  local results="" i line
  for ((i = 1; i <= runs; i++)); do
    line="$(measure_once "${image}")"
    log_info "run ${i}/${runs}: total engine bootstrap app = ${line}"
    results+="${line}"$'\n'
  done
  printf '%s' "${results}" | awk -v image="${image}" '
    { for (c = 1; c <= 4; c++) v[c, NR] = $c }
    function median(c,   n, i, j, t, a) {
      for (i = 1; i <= NR; i++) a[i] = v[c, i]
      for (i = 2; i <= NR; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    }
    function max(c,   i, m) { m = v[c, 1]; for (i = 2; i <= NR; i++) if (v[c, i] > m) m = v[c, i]; return m }
    END {
      split("docker run to first 2xx /healthz,engine (docker run to process start),bootstrap (main.sh to uvicorn exec),app start-up (uvicorn to first 2xx)", name, ",")
      printf "%s, %d runs: median / max seconds\n", image, NR
      for (c = 1; c <= 4; c++) printf "  %-45s %6.2f / %6.2f\n", name[c], median(c), max(c)
    }'
}

main "$@"
