#!/usr/bin/env bash
# Usage:   scripts/demo.sh [--help]
# Summary: The main job, end to end on one host: build the tool image through
#          docker/build.sh, run it, classify a sentence, then stop and remove what it
#          started. With DEMO_STACK=vllm it builds the vllm stack's CPU flavor instead
#          (VLLM_DEVICE=cpu, DEPLOY_MODE=both: a tiny chat model served by a real vLLM
#          and the tiny classifier) and prints a streamed chat answer as it arrives
#          before the classification. It installs what it needs (Debian packages, .venv),
#          brings up a Docker engine (or reuses a running one) and, unless told otherwise,
#          works without a registry or the Hub: a local Debian base image, tiny
#          random-weight models published through a local Olah mirror, a pip wheelhouse
#          made on the host. It ends with one line: the cold start (docker run to first
#          2xx /healthz). Run it again at will; each run cleans up after itself, also on
#          failure and Ctrl-C.
#
# Environment (all optional; the defaults make the offline demo):
#   DEMO_STACK           tool (default) or vllm
#   BASE_IMAGE           base image to build on (default: make tid-base:bookworm locally)
#   TOOL_MODEL           a Hub repo id to bake in instead of the tiny model (with HF_TOKEN,
#                        HF_ENDPOINT, TOOL_MODEL_REVISION as docker/build.sh reads them)
#   CHAT_MODEL           (vllm) the same for the chat model (CHAT_MODEL_REVISION); a Hub
#                        model outside the allowlist needs ALLOW_UNLISTED_MODELS=1
#   PIP_WHEELHOUSE       wheels for the build (default with the local base: a cached one
#                        made by the host's pip; with another base: none, pip uses PyPI)
#   BUILD_CA_BUNDLE      CA bundle for the build (default /etc/ssl/certs/ca-certificates.crt)
#   DEMO_TAG             image tag (default tool-demo; vllm-cpu-demo with DEMO_STACK=vllm)
#   DEMO_KEEP_IMAGE      1: keep the built image (default: removed; the build cache stays)
#   DEMO_HEALTH_TIMEOUT  seconds to wait for /healthz (default 120; 600 with DEMO_STACK=vllm,
#                        whose engine loads for about a minute)
#   DEMO_TEXT            the sentence to classify
#   DEMO_PROMPT          (vllm) the chat message
#   DOCKER_ENGINE_KEEP   1: leave a private Docker engine the demo started running
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
# shellcheck source=scripts/lib/base_image.sh
source "${ROOT}/scripts/lib/base_image.sh"
# shellcheck source=scripts/lib/wheelhouse.sh
source "${ROOT}/scripts/lib/wheelhouse.sh"
# shellcheck source=scripts/lib/hub_fixture.sh
source "${ROOT}/scripts/lib/hub_fixture.sh"
# shellcheck source=scripts/lib/container.sh
source "${ROOT}/scripts/lib/container.sh"
LOG_PREFIX="[demo]"

readonly DEMO_REPO="demo/tiny-classifier"
readonly DEMO_CHAT_REPO="demo/tiny-llama"
readonly DEMO_REVISION="v1"
readonly HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
readonly STEPS=7

DEMO_START="${EPOCHREALTIME}"
STEP_START="${EPOCHREALTIME}"
WORK_DIR=""
CONTAINER_ID=""
IMAGE=""

# Print the Usage/Summary block above.
usage() {
  sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# Seconds (one decimal) since an EPOCHREALTIME value.
# Arguments: start
since() {
  awk -v a="$1" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }'
}

# Close the previous step (its duration) and announce the next one.
# Globals:   STEP_START
# Arguments: number title
step() {
  local n="$1" title="$2"
  ((n == 1)) || log_success "done in $(since "${STEP_START}")s"
  STEP_START="${EPOCHREALTIME}"
  log_section "step ${n}/${STEPS} (at $(since "${DEMO_START}")s): ${title}"
}

# Stop and remove everything this run started: the container, the image (unless
# DEMO_KEEP_IMAGE=1), the mirror, the private engine, the work directory.
# Globals:   CONTAINER_ID, IMAGE, WORK_DIR, DEMO_KEEP_IMAGE
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [[ -z "${CONTAINER_ID}" ]] || container_remove "${CONTAINER_ID}"
  if [[ -n "${IMAGE}" && "${DEMO_KEEP_IMAGE:-}" != 1 ]]; then
    container_docker image rm -f "${IMAGE}" >/dev/null 2>&1 || true # it may not have been built
  fi
  hub_fixture_stop
  docker_engine_stop || true # it reports why it could not stop
  [[ -z "${WORK_DIR}" ]] || rm -rf "${WORK_DIR}"
  ((status == 0)) || log_err "failed after $(since "${DEMO_START}")s (status ${status}); everything it started was removed"
  exit "${status}"
}

# Debian packages and the project's .venv (torch, transformers and olah make and serve the
# tiny model); installed only when missing.
ensure_tools() {
  docker_engine_apt_install curl git python3-venv || return
  [[ -z "${TOOL_MODEL:-}" || (-z "${CHAT_MODEL:-}" && "${DEMO_STACK:-tool}" == vllm) ]] || return 0
  local py="${ROOT}/.venv/bin/python"
  if [[ -x "${py}" ]] && "${py}" -c 'import olah, torch, transformers' 2>/dev/null; then return 0; fi
  log_info "installing requirements-dev.txt into .venv (once; takes minutes)"
  [[ -x "${py}" ]] || python3 -m venv "${ROOT}/.venv"
  timeout 3000 "${py}" -m pip install -q --disable-pip-version-check -r "${ROOT}/requirements-dev.txt"
}

# Check the demo's own settings before anything starts.
# Returns:   1 with a message naming the variable otherwise
check_settings() {
  if [[ "${DEMO_STACK:-tool}" != tool && "${DEMO_STACK}" != vllm ]]; then
    log_err "DEMO_STACK '${DEMO_STACK}' is not valid; use tool (default) or vllm"
    return 1
  fi
  if [[ ! "${DEMO_HEALTH_TIMEOUT:-120}" =~ ^[1-9][0-9]*$ ]]; then
    log_err "DEMO_HEALTH_TIMEOUT '${DEMO_HEALTH_TIMEOUT}' is not valid; use a whole number of seconds above 0 (default 120; 600 with DEMO_STACK=vllm)"
    return 1
  fi
  if [[ -n "${DEMO_KEEP_IMAGE:-}" && "${DEMO_KEEP_IMAGE}" != 0 && "${DEMO_KEEP_IMAGE}" != 1 ]]; then
    log_err "DEMO_KEEP_IMAGE '${DEMO_KEEP_IMAGE}' is not valid; use 1 (keep the image) or 0 (default)"
    return 1
  fi
}

# Build the demo's image through docker/build.sh: the tool stack, or (DEMO_STACK=vllm) the
# vllm stack's CPU flavor with the chat model too; sets IMAGE.
# Arguments: base_image tool_model revision wheelhouse [chat_model chat_revision]
build_image() {
  local base="$1" model="$2" revision="$3" wheels="$4" chat="${5:-}" chat_revision="${6:-}"
  local env_args=(PUSH=0 "BASE_IMAGE=${base}" "TOOL_MODEL=${model}" "TOOL_MODEL_REVISION=${revision}"
    "BUILD_NETWORK=${BUILD_NETWORK:-host}" "PIP_WHEELHOUSE=${wheels}")
  if [[ -n "${chat}" ]]; then
    env_args+=(ENGINE=vllm VLLM_DEVICE=cpu DEPLOY_MODE=both "TAG=${DEMO_TAG:-vllm-cpu-demo}"
      "CHAT_MODEL=${chat}" "CHAT_MODEL_REVISION=${chat_revision}")
  else
    env_args+=(DEPLOY_MODE=tool "TAG=${DEMO_TAG:-tool-demo}")
  fi
  [[ -n "${BUILD_CA_BUNDLE:-}" || ! -r "${HOST_CA_BUNDLE}" ]] || env_args+=("BUILD_CA_BUNDLE=${HOST_CA_BUNDLE}")
  [[ -z "${HUB_FIXTURE_URL:-}" ]] || env_args+=("HF_ENDPOINT=${HUB_FIXTURE_URL}" ALLOW_UNLISTED_MODELS=1)
  IMAGE="$(env -u TEXT_API_KEY "${env_args[@]}" "${ROOT}/docker/build.sh" </dev/null)"
}

# Ask for a streamed chat answer and print it as it arrives (scripts/lib/chat_stream.py).
# Globals:   TEXT_API_KEY (read, through container_curl_key)
# Arguments: port served_model_name
# Returns:   1 when the answer is not a complete 200 stream
chat_demo() {
  local port="$1" model="$2" prompt="${DEMO_PROMPT:-Tell me about the river and the city.}" body
  body="$(python3 -c 'import json, sys; print(json.dumps({"model": sys.argv[1], "stream": True, "max_tokens": 32, "stream_options": {"include_usage": True}, "messages": [{"role": "user", "content": sys.argv[2]}]}))' "${model}" "${prompt}")"
  printf 'POST /v1/chat/completions {"stream": true, "messages": [{"role": "user", "content": "%s"}]}\n' "${prompt}"
  container_curl_key "http://127.0.0.1:${port}/v1/chat/completions" -N -H 'Content-Type: application/json' \
    -d "${body}" | python3 "${ROOT}/scripts/lib/chat_stream.py"
}

main() {
  case "${1:-}" in
    -h | --help) usage; return 0 ;;
    "") ;;
    *) log_err "unknown argument '$1'; settings are environment variables (see --help)"; return 1 ;;
  esac
  check_settings || return 1
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/demo.XXXXXX")"

  step 1 "install what is missing (Debian packages, .venv)"
  ensure_tools

  step 2 "Docker engine (reuse a running one, or start a private one)"
  docker_engine_up

  local vllm="" requirements="${ROOT}/docker/tool/requirements.txt" wheel_opts=() health=120
  if [[ "${DEMO_STACK:-tool}" == vllm ]]; then
    vllm=1 requirements="${ROOT}/docker/vllm/requirements-cpu.txt" wheel_opts=(--no-deps) health=600
  fi
  step 3 "base image and pip wheelhouse"
  local base="${BASE_IMAGE:-}" wheels="${PIP_WHEELHOUSE:-}"
  if [[ -z "${base}" ]]; then
    base="$(base_image_ensure)"
    [[ -n "${wheels}" ]] || wheels="$(wheelhouse_ensure "${wheel_opts[@]}" "${requirements}")"
  fi
  log_info "base image ${base}${wheels:+, wheelhouse ${wheels}}"

  step 4 "models (the tiny ones through a local Olah mirror, unless given)"
  local model="${TOOL_MODEL:-}" revision="${TOOL_MODEL_REVISION:-}" chat="" chat_revision=""
  if [[ -z "${model}" ]]; then
    model="${DEMO_REPO}"
    revision="${DEMO_REVISION}"
    hub_fixture_publish_tiny "${WORK_DIR}/mirrors" "${model}" "${revision}" >/dev/null
  fi
  if [[ -n "${vllm}" ]]; then
    chat="${CHAT_MODEL:-}" chat_revision="${CHAT_MODEL_REVISION:-}"
    if [[ -z "${chat}" ]]; then
      chat="${DEMO_CHAT_REPO}" chat_revision="${DEMO_REVISION}"
      hub_fixture_publish_tiny_chat "${WORK_DIR}/mirrors" "${chat}" "${chat_revision}" >/dev/null
    fi
  fi
  if [[ -d "${WORK_DIR}/mirrors" ]]; then
    hub_fixture_start "${WORK_DIR}/mirrors"
  else
    log_info "using ${model}${revision:+@${revision}} ${chat:+and ${chat} }from ${HF_ENDPOINT:-the Hugging Face Hub}"
  fi

  if [[ -n "${vllm}" ]]; then
    step 5 "build the vllm image's CPU flavor (docker/build.sh, VLLM_DEVICE=cpu, DEPLOY_MODE=both, PUSH=0)"
  else
    step 5 "build the tool image (docker/build.sh, DEPLOY_MODE=tool, PUSH=0)"
  fi
  build_image "${base}" "${model}" "${revision}" "${wheels}" "${chat}" "${chat_revision}"
  hub_fixture_stop

  step 6 "run it and wait for /healthz (cold start)"
  local port run_start cold
  port="$(container_free_port)"
  TEXT_API_KEY="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export TEXT_API_KEY
  run_start="${EPOCHREALTIME}"
  # vLLM's CPU engine keeps a message queue in /dev/shm, more than Docker's default 64 MiB
  CONTAINER_ID="$(container_start "${IMAGE}" "${port}" --label "tid-demo=$$" ${vllm:+--shm-size=1g})"
  container_wait_2xx "http://127.0.0.1:${port}/healthz" "${DEMO_HEALTH_TIMEOUT:-${health}}" "${CONTAINER_ID}"
  cold="$(since "${run_start}")"
  log_info "healthy on port ${port} after ${cold}s"

  if [[ -n "${vllm}" ]]; then
    step 7 "a streamed chat answer (a tiny random model: random words), then classify a sentence"
    chat_demo "${port}" "${chat}"
  else
    step 7 "classify a sentence"
  fi
  local text="${DEMO_TEXT:-The service was great and the food even better.}" body answer
  body="$(python3 -c 'import json, sys; print(json.dumps({"input": sys.argv[1]}))' "${text}")"
  answer="$(container_curl_key "http://127.0.0.1:${port}/v1/classify" -H 'Content-Type: application/json' -d "${body}")"
  if [[ "${answer##*$'\n'}" != 200 ]]; then
    log_err "/v1/classify answered status ${answer##*$'\n'}: ${answer%$'\n'*}"
    return 1
  fi
  printf 'POST /v1/classify {"input": "%s"}\n%s\n' "${text}" "${answer%$'\n'*}"
  log_success "done in $(since "${STEP_START}")s"
  log_section "cleaning up (container, image, mirror, engine)"
  container_remove "${CONTAINER_ID}"
  CONTAINER_ID=""
  printf 'cold start: %ss from docker run to the first 2xx /healthz (%s, total %ss)\n' \
    "${cold}" "${IMAGE}" "$(since "${DEMO_START}")"
}

main "$@"
