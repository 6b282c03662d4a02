#!/usr/bin/env bash
# Usage:   scripts/bench/vllm_cpu.sh [--help] [IMAGE]
# Summary: The vllm stack's CPU flavor with a real vLLM, measured:
#            gateway     the same streamed chat requests sent directly to `vllm serve` (its
#                        port on the host network) and through the app, interleaved
#                        (scripts/bench/gateway.py --app/--engine), at concurrency 1 and 16:
#                        time to first token (median, p95), tokens/s per stream, ratios
#            cold start  scripts/bench/coldstart.sh on the same image: docker run to ready,
#                        split into bootstrap, vLLM start and the generation check, beside
#                        `vllm serve` alone in the same image
#          Both run the image with DEPLOY_MODE=chat (BENCH_DEPLOY_MODE), so that the tool
#          model's loading and threads weigh on neither side: the figures are the layer's.
#          Without IMAGE it builds the demo's (scripts/demo.sh, DEMO_STACK=vllm,
#          DEMO_KEEP_IMAGE=1, DEMO_TAG=vllm-cpu-bench) and removes it at the end.
#          Not part of the test suite; about 10 minutes here after the build.
#
# Environment:
#   BENCH_REQUESTS    requests per side and concurrency level (default 100)
#   BENCH_MAX_TOKENS  tokens per answer (default: gateway.py's --max-tokens, 128)
#   COLDSTART_RUNS    cold starts of each kind (default 3)
#   BENCH_DEPLOY_MODE DEPLOY_MODE of the measured container (default chat; both loads the
#                     tool model beside vLLM)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "${ROOT}/scripts/lib/bench.sh"
LOG_PREFIX="[bench]"

main() {
  case "${1:-}" in
    -h | --help) log_usage "${BASH_SOURCE[0]}"; return 0 ;;
  esac
  local image="${1:-}" name
  for name in BENCH_REQUESTS BENCH_MAX_TOKENS; do
    if [[ -n "${!name:-}" && ! "${!name}" =~ ^[1-9][0-9]*$ ]]; then
      log_err "${name} '${!name}' is not valid; use a whole number above 0"
      return 1
    fi
  done
  bench_traps
  if [[ -z "${image}" ]]; then
    log_section "building the demo's vllm CPU image (scripts/demo.sh, DEMO_STACK=vllm, DEMO_KEEP_IMAGE=1)"
    DEMO_STACK=vllm DEMO_KEEP_IMAGE=1 DEMO_TAG=vllm-cpu-bench "${ROOT}/scripts/demo.sh" >/dev/null
    image="${IMAGE_REPO:-yap-text-api}:vllm-cpu-bench"
    BUILT_IMAGE="${image}"
  fi
  docker_engine_up
  TEXT_API_KEY="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export TEXT_API_KEY
  local port engine_port model
  port="$(container_free_port)"
  engine_port="$(container_free_port)"
  CID="$(container_start "${image}" "${port}" --shm-size=1g -e "CHAT_ENGINE_PORT=${engine_port}" \
    -e MAX_CONCURRENT_CONNECTIONS=1000 -e "DEPLOY_MODE=${BENCH_DEPLOY_MODE:-chat}")"
  container_wait_2xx "http://127.0.0.1:${port}/healthz" 600 "${CID}"
  model="$(container_docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "${image}" | sed -n 's/^CHAT_MODEL=//p')"
  # the app's uvicorn, as the host sees it (its CPU time per relayed chunk is reported)
  local app_pid
  app_pid="$(container_docker top "${CID}" -eo pid,args | awk '/uvicorn src.server:app/ { print $1; exit }')"
  log_section "gateway, concurrency 1 and 16"
  PYTHONPATH="${ROOT}" "${ROOT}/.venv/bin/python" "${ROOT}/scripts/bench/gateway.py" \
    --app "http://127.0.0.1:${port}" --engine "http://127.0.0.1:${engine_port}" --model "${model}" \
    --requests "${BENCH_REQUESTS:-100}" --concurrency 1 16 ${app_pid:+--app-pid "${app_pid}"} \
    ${BENCH_MAX_TOKENS:+--max-tokens "${BENCH_MAX_TOKENS}"}
  container_remove "${CID}"
  CID=""
  log_section "cold start (scripts/bench/coldstart.sh)"
  COLDSTART_RUNS="${COLDSTART_RUNS:-3}" COLDSTART_DEPLOY_MODE="${BENCH_DEPLOY_MODE:-chat}" \
    "${ROOT}/scripts/bench/coldstart.sh" "${image}"
}

main "$@"
