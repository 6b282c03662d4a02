# shellcheck shell=bash
# Start-up decisions and checks every stack's bootstrap runs, in this order:
#   startup_check_workers      one uvicorn worker when the chat engine is deployed
#   startup_memory_fractions   GPU memory split by deploy mode (user values win)
#   startup_environment        HF_HUB_OFFLINE, CA bundle exports
#   startup_check_artifacts    baked models/engines exist and match their manifest
#   startup_check_shm          /dev/shm big enough for multi-GPU
# Each failure is one clear line and status 1; all together take well under a second.
#
# A library: functions only, safe under `set -u`. Needs logs.sh and settings.sh.

# shellcheck source=docker/common/scripts/logs.sh
source "${BASH_SOURCE[0]%/*}/logs.sh"
# shellcheck source=docker/common/scripts/util.sh
source "${BASH_SOURCE[0]%/*}/util.sh"
# shellcheck source=docker/common/scripts/settings.sh
source "${BASH_SOURCE[0]%/*}/settings.sh"
# shellcheck source=docker/common/scripts/deploy_mode.sh
source "${BASH_SOURCE[0]%/*}/deploy_mode.sh"
# shellcheck source=docker/common/scripts/gpu.sh
source "${BASH_SOURCE[0]%/*}/gpu.sh"

# The settings every stack's `--explain` shows after its own (STACK_SETTINGS
# in a stack's bootstrap.sh = its own names + these).
# shellcheck disable=SC2034 # read by the stacks' bootstrap.sh
STARTUP_COMMON_SETTINGS=(
  HOST PORT UVICORN_WORKERS LOG_LEVEL LOG_FORMAT TEXT_API_KEY TEXT_API_KEY_FILE
  MAX_CONCURRENT_CONNECTIONS TOOL_MAX_BATCH TOOL_MAX_CHARS TOOL_BATCH_WAIT_MS SHUTDOWN_GRACE_S
  MAX_HEADER_BYTES HEADER_TIMEOUT_S BODY_TIMEOUT_S METRICS_REQUIRE_KEY
  GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT
  TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
  HF_HUB_OFFLINE CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE CURL_CA_BUNDLE
  WARMUP_MAX_WAIT WARMUP_WAIT_INTERVAL WARMUP_FAIL_EXIT
)

# Set CHAT_GPU_FRAC / TOOL_GPU_FRAC for the deploy mode: chat 0.90, tool 0.90,
# both 0.70 + 0.20. Values the user set win; a sum above 0.95 is an error.
# Globals:   DEPLOY_MODE (read), CHAT_GPU_FRAC, TOOL_GPU_FRAC (set)
# Returns:   1 when a fraction is not a number from 0.01 to 1 (the range the app's
#            src/config/settings.py accepts) or the sum is above 0.95
startup_memory_fractions() {
  case "${DEPLOY_MODE:-both}" in
    chat) settings_default CHAT_GPU_FRAC 0.90 "deploy mode" ;;
    tool) settings_default TOOL_GPU_FRAC 0.90 "deploy mode" ;;
    *)
      settings_default CHAT_GPU_FRAC 0.70 "deploy mode"
      settings_default TOOL_GPU_FRAC 0.20 "deploy mode"
      ;;
  esac
  local name
  for name in CHAT_GPU_FRAC TOOL_GPU_FRAC; do
    [[ -z "${!name:-}" ]] && continue
    if ! [[ "${!name}" =~ ^[0-9]*\.?[0-9]+$ ]] ||
      ! awk -v v="${!name}" 'BEGIN { exit !(v >= 0.01 && v <= 1) }'; then
      log_err "[startup]" "${name} '${!name}' is not a fraction of GPU memory; use a number from 0.01 to 1 (e.g. 0.70)"
      return 1
    fi
  done
  [[ "${DEPLOY_MODE:-both}" == both ]] || return 0
  if ! awk -v a="${CHAT_GPU_FRAC}" -v b="${TOOL_GPU_FRAC}" 'BEGIN { exit !(a + b <= 0.95 + 1e-9) }'; then
    log_err "[startup]" "CHAT_GPU_FRAC (${CHAT_GPU_FRAC}) + TOOL_GPU_FRAC (${TOOL_GPU_FRAC}) is above 0.95 of GPU memory; lower one of them (defaults for DEPLOY_MODE=both: 0.70 and 0.20)"
    return 1
  fi
}

# Runtime environment every stack wants: no Hub access at run time unless the
# user asks for it, and a mounted CA bundle used by every HTTP client.
# Globals:   HF_HUB_OFFLINE (set when unset), and those of startup_ca_bundle
# Returns:   1 when CA_BUNDLE names a file that cannot be read
startup_environment() {
  settings_default HF_HUB_OFFLINE 1 default
  startup_ca_bundle
}

# The environment of `main.sh --download-models`: the Hub must be reachable, so
# HF_HUB_OFFLINE may not be on; a mounted CA bundle is used as for the server.
# Globals:   HF_HUB_OFFLINE (read), and those of startup_ca_bundle
# Returns:   1 with a message when HF_HUB_OFFLINE is on or CA_BUNDLE is unreadable
startup_download_environment() {
  case "${HF_HUB_OFFLINE:-}" in
    1 | [Oo][Nn] | [Yy][Ee][Ss] | [Tt][Rr][Uu][Ee])
      log_err "[startup]" "HF_HUB_OFFLINE=${HF_HUB_OFFLINE} forbids the download of --download-models; unset it for this container (the server's own container keeps it)"
      return 1
      ;;
  esac
  startup_ca_bundle
}

# Export a mounted CA bundle for every HTTP client (requests, OpenSSL, curl).
# Globals:   CA_BUNDLE (read), REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE
#            (set from CA_BUNDLE unless set)
# Returns:   1 when CA_BUNDLE names a file that cannot be read
startup_ca_bundle() {
  [[ -n "${CA_BUNDLE:-}" ]] || return 0
  if [[ ! -r "${CA_BUNDLE}" || ! -s "${CA_BUNDLE}" ]]; then
    log_err "[startup]" "CA_BUNDLE '${CA_BUNDLE}' is not a readable, non-empty file; mount the bundle there (e.g. -v /etc/ssl/certs/ca-certificates.crt:${CA_BUNDLE}:ro) or unset CA_BUNDLE"
    return 1
  fi
  local name
  for name in REQUESTS_CA_BUNDLE SSL_CERT_FILE CURL_CA_BUNDLE; do
    settings_default "${name}" "${CA_BUNDLE}" "CA_BUNDLE"
  done
}

# Check one model directory: it exists, holds no half-finished download, and
# matches its download manifest (file count and sizes). The build's download step
# writes a manifest into every directory it bakes, as `main.sh --download-models`
# does into a volume, so a missing one is an error, except in a directory of the
# user's own (its variable set by the user): a warning.
# Globals:   SETTING_SOURCE (read: who set the variable), APP_ROOT, PYTHONPATH
# Arguments: label (e.g. "tool model") directory variable-name
# Returns:   1 with a message when the check fails
startup_check_dir() {
  local label="$1" dir="$2" var="$3"
  if [[ ! -d "${dir}" ]]; then
    log_err "[startup]" "${label} directory ${var}='${dir}' does not exist; the image was built without it (rebuild with the model set), or, for an image built with BAKE_MODELS=0, mount there the volume that main.sh --download-models filled"
    return 1
  fi
  local partial
  partial="$(find "${dir}" -name '*.incomplete' -print -quit 2>/dev/null)"
  if [[ -n "${partial}" ]]; then
    log_err "[startup]" "${label} in ${dir} holds a half-finished download (${partial#"${dir}"/}); run main.sh --download-models again to finish it (a baked image: rebuild it)"
    return 1
  fi
  if [[ ! -f "${dir}/.download-manifest.json" ]]; then
    if [[ "${SETTING_SOURCE[${var}]:-}" == user ]]; then
      log_warn "[startup]" "${label} in ${dir} (${var}, set by you) has no download manifest; its files cannot be checked"
      return 0
    fi
    log_err "[startup]" "${label} in ${dir} has no download manifest (.download-manifest.json), which the build writes with every baked download and main.sh --download-models with every download into a volume: rebuild the image, or fill the volume with main.sh --download-models (to serve a directory of your own, set ${var} to it)"
    return 1
  fi
  local out abs="${dir}"
  [[ "${abs}" == /* ]] || abs="${PWD}/${abs}"
  if ! out="$(util_run_pyhelper 30 manifest verify "${abs}" 2>&1)"; then
    log_err "[startup]" "${label} in ${dir} does not match its download manifest: ${out##*$'\n'}"
    return 1
  fi
}

# Check the baked artifacts the deploy mode needs.
# Globals:   DEPLOY_CHAT, DEPLOY_TOOL, ENGINE, CHAT_MODEL_PATH, TOOL_MODEL_PATH, TRT_ENGINE_DIR (read)
# Returns:   1 on the first failing directory
startup_check_artifacts() {
  if [[ "${DEPLOY_TOOL:-0}" == 1 ]]; then
    startup_check_dir "tool model" "${TOOL_MODEL_PATH:-/opt/models/tool}" TOOL_MODEL_PATH || return 1
  fi
  if [[ "${DEPLOY_CHAT:-0}" == 1 ]]; then
    startup_check_dir "chat model" "${CHAT_MODEL_PATH:-/opt/models/chat}" CHAT_MODEL_PATH || return 1
    if [[ "${ENGINE:-vllm}" == trt ]]; then
      startup_check_dir "TensorRT-LLM engine" "${TRT_ENGINE_DIR:-/opt/engines/trt-chat}" TRT_ENGINE_DIR || return 1
    fi
  fi
  return 0
}

# Refuse several uvicorn workers when the chat engine is deployed: each worker
# would start its own engine on CHAT_ENGINE_PORT. Tool-only may use several (each
# loads its own copy of the model; MAX_CONCURRENT_CONNECTIONS is per worker).
# Globals:   UVICORN_WORKERS, DEPLOY_CHAT, DEPLOY_MODE (read)
# Returns:   1 with a message when chat is deployed with more than one worker
startup_check_workers() {
  local workers="${UVICORN_WORKERS:-1}"
  [[ "${DEPLOY_CHAT:-0}" == 1 && "${workers}" =~ ^[0-9]+$ ]] || return 0 # server.sh checks the form
  if ((10#${workers} > 1)); then
    log_err "[startup]" "UVICORN_WORKERS=${workers} with DEPLOY_MODE=${DEPLOY_MODE:-both}: each worker would start its own chat engine on CHAT_ENGINE_PORT; keep UVICORN_WORKERS=1 and scale with more containers (replicas)"
    return 1
  fi
}

# Print the size and the free space of /dev/shm in whole MiB ("size free"); nothing when
# df cannot tell.
# Globals:   SHM_PATH (default /dev/shm; for tests)
# Outputs:   the two numbers on stdout
startup_shm_mib() {
  timeout 5 df -Pk "${SHM_PATH:-/dev/shm}" 2>/dev/null |
    awk 'NR == 2 && $2 ~ /^[0-9]+$/ && $4 ~ /^[0-9]+$/ { print int($2 / 1024), int($4 / 1024) }'
}

# Warn when /dev/shm is under 1 GiB while more than one GPU is visible
# (NCCL and tensor parallelism need shared memory).
# Globals:   GPU_COUNT (read), SHM_PATH (default /dev/shm; for tests)
startup_check_shm() {
  ((${GPU_COUNT:-0} > 1)) || return 0
  local size
  read -r size _ < <(startup_shm_mib)
  [[ -n "${size}" ]] || return 0
  if ((size < 1024)); then
    log_warn "[startup]" "/dev/shm is ${size} MiB with ${GPU_COUNT} GPUs visible; multi-GPU engines need more: run with --shm-size=16g or --ipc=host"
  fi
  return 0
}

# The bootstrap every stack runs (its bootstrap.sh calls this): the engine
# check, deploy mode, one GPU detection, memory fractions, the stack's env files
# in order, the shared decisions and checks above, then one summary line.
# With --cpu (an image built to run on the CPU: the vllm stack's VLLM_DEVICE=cpu) there
# is no GPU detection and no GPU memory fraction.
# Globals:   STACK_SETTINGS (read: the variables `--explain` shows), APP_ROOT, ENGINE
# Arguments: [--cpu] stack engine env_file...   (engine: vllm, trt, or "" for the
#            tool stack; env files are sourced in the given order)
# Returns:   1 on the first failure, with its message already printed
# With STARTUP_FOR_DOWNLOAD=1 (read; `main.sh --download-models`) it stops after the
# deploy mode, with startup_download_environment.
startup_bootstrap() {
  local cpu=0
  if [[ "${1:-}" == --cpu ]]; then
    cpu=1
    shift
  fi
  local stack="$1" engine="$2" file
  shift 2
  settings_record_user "${STACK_SETTINGS[@]}"
  if [[ -n "${engine}" ]]; then
    if [[ "${ENGINE:-${engine}}" != "${engine}" ]]; then
      log_err "[${stack}]" "ENGINE '${ENGINE}' is not served by the ${stack} image, which runs ENGINE=${engine} only; use the image of that engine (or unset ENGINE)"
      return 1
    fi
    settings_default ENGINE "${engine}" image
  fi
  init_deploy_mode "[${stack}]" "${engine}" || return 1
  # `main.sh --download-models`: the deploy mode picks the models; the rest checks them.
  if [[ "${STARTUP_FOR_DOWNLOAD:-0}" == 1 ]]; then
    startup_download_environment
    return
  fi
  startup_check_workers || return 1
  if ((cpu == 0)); then
    gpu_init_detection || return 1
    settings_attribute "gpu preset" GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT
    startup_memory_fractions || return 1
  fi
  for file in "$@"; do
    if [[ ! -r "${file}" ]]; then
      log_err "[${stack}]" "bootstrap file ${file} is missing from the image"
      return 1
    fi
    # shellcheck source=/dev/null
    source "${file}" || return 1
  done
  startup_environment || return 1
  startup_check_artifacts || return 1
  startup_check_shm
  local models="" quant="${CHAT_QUANTIZATION:-${CHAT_MODEL_QUANT:-}}"
  [[ "${DEPLOY_CHAT:-0}" == 1 ]] && models+=" chat=${CHAT_MODEL:-${CHAT_MODEL_PATH:-?}}${quant:+ (${quant})}"
  [[ "${DEPLOY_TOOL:-0}" == 1 ]] && models+=" tool=${TOOL_MODEL:-${TOOL_MODEL_PATH:-?}}"
  local device="GPU: ${DETECTED_GPU_NAME:-none} x${GPU_COUNT:-0}${GPU_SM_ARCH:+ (${GPU_SM_ARCH})}"
  ((cpu == 0)) || device="CPU"
  log_success "[${stack}]" "ready to start: DEPLOY_MODE=${DEPLOY_MODE}, ${device},${models}"
}
