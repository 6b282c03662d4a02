#!/usr/bin/env bash
# Usage:   scripts/bench/coldstart.sh [--help] [IMAGE]
# Summary: Cold start of a stack image: from `docker run` to the first 2xx /healthz,
#          COLDSTART_RUNS times (default 10), then the median and the max, split into
#            engine     docker run until the container's process starts (State.StartedAt)
#            bootstrap  main.sh start until it execs uvicorn (its "starting the server" line)
#            app        uvicorn start until the first 2xx /healthz seen from the host
#          and, for an image that serves a chat model (the vllm CPU flavor), also
#            chat start      the app starting the engine until its /health answers 200
#            chat check      the generation check (one token) until "chat engine ready"
#          beside the same engine command alone in the same image (`vllm serve` as the
#          entrypoint, no app): docker run until /health is 200 and one token came back;
#          the ratio of the medians is the layer's cost.
#          Without IMAGE it builds the demo's image first (scripts/demo.sh with
#          DEMO_KEEP_IMAGE=1, DEMO_TAG=tool-coldstart) and removes it at the end.
#          Not part of the test suite; takes about a minute after the build (the tool
#          image; a vLLM image takes about a minute per run).
#
# Environment:
#   COLDSTART_RUNS         runs of each kind (default 10)
#   COLDSTART_DEPLOY_MODE  DEPLOY_MODE for the runs with the layer (default: the image's);
#                          chat compares a chat image with its engine alone on equal terms
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "${ROOT}/scripts/lib/bench.sh"
LOG_PREFIX="[coldstart]"

# Seconds since the epoch of an RFC 3339 time stamp with nanoseconds (docker's format).
# Arguments: timestamp
epoch_of() {
  date -d "$1" +%s.%N
}

# Print the epoch time of the first container log line matching a pattern; nothing if none.
# Arguments: container_id awk_pattern
log_time() {
  local at
  at="$(container_docker logs -t "$1" 2>&1 | awk -v p="$2" '$0 ~ p { print $1; exit }')"
  [[ -z "${at}" ]] || epoch_of "${at}"
}

# One cold start; prints "total engine bootstrap app" in seconds, and for an image serving
# a chat engine also "chat_start chat_check"; the engine's command goes to ENGINE_ARGV_FILE.
# Arguments: image
measure_once() {
  local image="$1" port t0 t1 started uvicorn engine checking ready
  port="$(container_free_port)"
  t0="${EPOCHREALTIME}"
  # --shm-size: room for vLLM's CPU engine's message queue (no effect on the tool image)
  CID="$(container_start "${image}" "${port}" --shm-size=1g -e "CHAT_ENGINE_PORT=$(container_free_port)" \
    ${COLDSTART_DEPLOY_MODE:+-e "DEPLOY_MODE=${COLDSTART_DEPLOY_MODE}"})"
  container_wait_2xx "http://127.0.0.1:${port}/healthz" 600 "${CID}"
  t1="${EPOCHREALTIME}"
  started="$(epoch_of "$(container_docker inspect -f '{{.State.StartedAt}}' "${CID}")")"
  uvicorn="$(log_time "${CID}" 'starting the server:')"
  if [[ -z "${uvicorn}" ]]; then
    log_err "no 'starting the server' line in the container's log; is ${image} a stack image?"
    return 1
  fi
  engine="$(log_time "${CID}" 'starting chat engine:')"
  if [[ -n "${engine}" ]]; then
    checking="$(log_time "${CID}" 'checking that it generates')"
    ready="$(log_time "${CID}" 'chat engine ready')"
    container_docker logs "${CID}" 2>&1 | sed -n 's/.*starting chat engine: //p' | head -n 1 >"${ENGINE_ARGV_FILE}"
  fi
  container_remove "${CID}"
  CID=""
  awk -v t0="${t0}" -v t1="${t1}" -v s="${started}" -v u="${uvicorn}" -v e="${engine}" \
    -v c="${checking:-}" -v r="${ready:-}" 'BEGIN {
      printf "%.3f %.3f %.3f %.3f", t1 - t0, s - t0, u - s, t1 - u
      if (e != "") printf " %.3f %.3f", c - e, r - c
      printf "\n" }'
}

# The same engine command alone in the same image (no app): docker run until its /health is
# 200 and one token came back; prints the seconds.
# Arguments: image engine_command (as the app logged it: `vllm serve PATH --host … --port N …`)
measure_engine_alone() {
  local image="$1" cmd="$2" port t0 argv=() i model=""
  read -r -a argv <<<"${cmd}" # the app logs it shell-quoted; the bench's model names need no quotes
  port="$(container_free_port)"
  # the logged port may be taken now: a fresh one; the model name the requests must use
  for ((i = 0; i < ${#argv[@]}; i++)); do
    case "${argv[i]}" in
      --port) argv[i + 1]="${port}" ;;
      --served-model-name) model="${argv[i + 1]}" ;;
    esac
  done
  t0="${EPOCHREALTIME}"
  CID="$(container_docker run -d --network host --shm-size=1g --entrypoint "/opt/venv/bin/${argv[0]}" "${image}" "${argv[@]:1}")"
  container_wait_2xx "http://127.0.0.1:${port}/health" 600 "${CID}"
  curl -sf -m 120 -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"model\": \"${model}\", \"prompt\": \"Hello\", \"max_tokens\": 1}" "http://127.0.0.1:${port}/v1/completions"
  awk -v a="${t0}" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.3f\n", b - a }'
  container_remove "${CID}"
  CID=""
}

main() {
  case "${1:-}" in
    -h | --help) log_usage "${BASH_SOURCE[0]}"; return 0 ;;
  esac
  local image="${1:-}" runs="${COLDSTART_RUNS:-10}"
  if [[ ! "${runs}" =~ ^[1-9][0-9]*$ ]]; then
    log_err "COLDSTART_RUNS '${runs}' is not valid; use a whole number above 0 (default 10)"
    return 1
  fi
  bench_traps
  if [[ -z "${image}" ]]; then
    log_section "building the demo image (scripts/demo.sh, DEMO_KEEP_IMAGE=1)"
    DEMO_KEEP_IMAGE=1 DEMO_TAG=tool-coldstart "${ROOT}/scripts/demo.sh" >/dev/null
    image="${IMAGE_REPO:-yap-text-api}:tool-coldstart"
    BUILT_IMAGE="${image}"
  fi
  docker_engine_up
  TEXT_API_KEY="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export TEXT_API_KEY
  ENGINE_ARGV_FILE="$(mktemp)"
  local results="" i line alone=""
  # with a chat engine, each run is followed by one of the engine alone, so that a machine
  # whose load drifts weighs on both sides alike
  for ((i = 1; i <= runs; i++)); do
    line="$(measure_once "${image}")"
    log_info "run ${i}/${runs}: total engine bootstrap app [chat-start chat-check] = ${line}"
    results+="${line}"$'\n'
    [[ -s "${ENGINE_ARGV_FILE}" ]] || continue
    line="$(measure_engine_alone "${image}" "$(cat "${ENGINE_ARGV_FILE}")")"
    log_info "run ${i}/${runs}: the engine alone = ${line}"
    alone+="${line}"$'\n'
  done
  rm -f "${ENGINE_ARGV_FILE}"
  printf '%s' "${results}" | paste -d' ' - <(printf '%s' "${alone}") | awk -v image="${image}" '
    { cols = NF; for (c = 1; c <= NF; c++) v[c, NR] = $c }
    function median(c,   n, i, j, t, a) {
      for (i = 1; i <= NR; i++) a[i] = v[c, i]
      for (i = 2; i <= NR; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    }
    function max(c,   i, m) { m = v[c, 1]; for (i = 2; i <= NR; i++) if (v[c, i] > m) m = v[c, i]; return m }
    END {
      split("docker run to first 2xx /healthz,engine (docker run to process start),bootstrap (main.sh to uvicorn exec),app start-up (uvicorn to first 2xx),chat start (engine start to /health 200),chat check (one generated token),the engine alone (docker run to /health + one token)", name, ",")
      printf "%s, %d runs: median / max seconds\n", image, NR
      for (c = 1; c <= cols; c++) printf "  %-55s %7.3f / %7.3f\n", name[c], median(c), max(c)
      if (cols == 7) printf "  layer cost: %.3f (median with the layer / median of the engine alone)\n", median(1) / median(7)
    }'
}

main "$@"
