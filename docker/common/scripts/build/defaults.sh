# shellcheck shell=bash
# Build-host defaults for the router (docker/build.sh) and the stack build
# scripts (docker/<stack>/build.sh), in one place, and the checks of the plain
# option values. Values the user set always win.
#
# A library: functions and constants only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/logs.sh
source "$(dirname "${BASH_SOURCE[0]}")/../logs.sh"

# The stacks docker/build.sh can route to. The valid engines and deploy modes are
# in src/config/models.py alone (build_valid_values in validate.sh prints them).
BUILD_STACKS=(vllm trt tool)
# The image name when IMAGE_NAME is not set (repository DOCKER_USERNAME/IMAGE_NAME).
BUILD_DEFAULT_IMAGE_NAME="yap-text-api"
# The base of the vllm stack's CPU flavor (VLLM_DEVICE=cpu) when BASE_IMAGE is not set: the
# Debian release (and Python 3.11) docker/vllm/requirements-cpu.txt was locked on. The CUDA
# flavor's base is the Dockerfile's own ARG BASE_IMAGE default.
BUILD_CPU_BASE_IMAGE="debian:bookworm-slim"

# Set the router's defaults: ENGINE=vllm, DEPLOY_MODE=both.
# Globals:   ENGINE, DEPLOY_MODE (written when unset or empty)
build_init_router_defaults() {
  ENGINE="${ENGINE:-vllm}"
  DEPLOY_MODE="${DEPLOY_MODE:-both}"
}

# Set every build default of a stack (and the router's) that is still unset.
# Globals:   ENGINE, DEPLOY_MODE, IMAGE_NAME, TAG, PLATFORM, PUSH, DRY_RUN,
#            NO_CACHE, DOCKER_TIMEOUT, DOCKER_BUILD_TIMEOUT, DOCKER_PUSH_TIMEOUT,
#            TRT_ENGINE_REPO, VLLM_DEVICE and (VLLM_DEVICE=cpu) BASE_IMAGE
#            (written when unset or empty)
# Arguments: stack (vllm, trt or tool)
# Returns:   1 when the stack is unknown
build_init_defaults() {
  local stack="$1"
  case "${stack}" in
    vllm | trt)
      ENGINE="${ENGINE:-${stack}}"
      DEPLOY_MODE="${DEPLOY_MODE:-both}"
      ;;
    tool) DEPLOY_MODE="${DEPLOY_MODE:-tool}" ;;
    *)
      log_err "[build]" "unknown stack '${stack}'; valid: ${BUILD_STACKS[*]}"
      return 1
      ;;
  esac
  local flavor="${stack}"
  if [[ "${stack}" == trt ]]; then
    TRT_ENGINE_REPO="${TRT_ENGINE_REPO:-${CHAT_MODEL:-}}"
  elif [[ "${stack}" == vllm ]]; then
    VLLM_DEVICE="${VLLM_DEVICE:-cuda}"
    if [[ "${VLLM_DEVICE}" == cpu ]]; then
      BASE_IMAGE="${BASE_IMAGE:-${BUILD_CPU_BASE_IMAGE}}"
      flavor=vllm-cpu
    fi
  fi
  if [[ -z "${TAG:-}" ]]; then
    if [[ "${DEPLOY_MODE}" == tool ]]; then TAG="tool-latest"; else TAG="${flavor}-${DEPLOY_MODE}"; fi
  fi
  IMAGE_NAME="${IMAGE_NAME:-${BUILD_DEFAULT_IMAGE_NAME}}"
  PLATFORM="${PLATFORM:-linux/amd64}"
  PUSH="${PUSH:-1}"
  DRY_RUN="${DRY_RUN:-0}"
  NO_CACHE="${NO_CACHE:-0}"
  # BAKE_MODELS too: 1 bakes the models into the image, 0 leaves them to a volume that the
  # image's main.sh --download-models fills
  BAKE_MODELS="${BAKE_MODELS:-1}"
  DOCKER_TIMEOUT="${DOCKER_TIMEOUT:-30}"
  DOCKER_BUILD_TIMEOUT="${DOCKER_BUILD_TIMEOUT:-14400}"
  DOCKER_PUSH_TIMEOUT="${DOCKER_PUSH_TIMEOUT:-7200}"
}

# Check the plain option values of a stack build: switches, timeouts, platform
# and the host-side paths. One error line per bad value.
# Globals:   PUSH, DRY_RUN, NO_CACHE, BAKE_MODELS, DOCKER_TIMEOUT, DOCKER_BUILD_TIMEOUT,
#            DOCKER_PUSH_TIMEOUT, PLATFORM, BUILD_NETWORK, BUILD_CA_BUNDLE,
#            PIP_WHEELHOUSE (read)
# Returns:   0 when all are valid, 1 otherwise
build_check_options() {
  local status=0 name
  for name in PUSH DRY_RUN NO_CACHE BAKE_MODELS; do
    if [[ "${!name:-}" != 0 && "${!name:-}" != 1 ]]; then
      log_err "[build]" "${name} '${!name:-}' is not valid; use 0 or 1"
      status=1
    fi
  done
  for name in DOCKER_TIMEOUT DOCKER_BUILD_TIMEOUT DOCKER_PUSH_TIMEOUT; do
    if [[ ! "${!name:-}" =~ ^[1-9][0-9]{0,5}$ ]]; then
      log_err "[build]" "${name} '${!name:-}' is not valid; use a whole number of seconds (1-999999)"
      status=1
    fi
  done
  if [[ ! "${PLATFORM:-}" =~ ^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?(,[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?)*$ ]]; then
    log_err "[build]" "PLATFORM '${PLATFORM:-}' is not valid; use os/arch[/variant] (example: linux/amd64)"
    status=1
  fi
  if [[ -n "${BUILD_NETWORK:-}" && ! "${BUILD_NETWORK}" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; then
    log_err "[build]" "BUILD_NETWORK '${BUILD_NETWORK}' is not valid; use host, none, default or a network name"
    status=1
  fi
  if [[ -n "${BUILD_CA_BUNDLE:-}" && ! (-f "${BUILD_CA_BUNDLE}" && -r "${BUILD_CA_BUNDLE}") ]]; then
    log_err "[build]" "BUILD_CA_BUNDLE '${BUILD_CA_BUNDLE}' is not a readable file; give the path of a PEM bundle (example: /etc/ssl/certs/ca-certificates.crt)"
    status=1
  elif [[ "${BUILD_CA_BUNDLE:-}" == *,* ]]; then
    log_err "[build]" "BUILD_CA_BUNDLE '${BUILD_CA_BUNDLE}' holds a comma, which --secret cannot take; copy the bundle to a path without one"
    status=1
  fi
  if [[ -n "${PIP_WHEELHOUSE:-}" && ! -d "${PIP_WHEELHOUSE}" ]]; then
    log_err "[build]" "PIP_WHEELHOUSE '${PIP_WHEELHOUSE}' is not a directory; give a directory of .whl files"
    status=1
  fi
  return "${status}"
}
