# shellcheck shell=bash
# The bootstrap every stack runs (startup_bootstrap): deploy mode, GPU detection and the
# stack's presets, then the one call into src/config (settings_resolve), which defines,
# defaults and checks every other setting and the baked models and engines against their
# manifests, then the check only the shell makes:
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

# The bootstrap every stack runs (its bootstrap.sh's stack_bootstrap calls this): the
# engine check, deploy mode, one GPU detection, the stack's presets (its env file, sourced for
# its functions, then the named one called), then the settings src/config resolves and checks
# (settings_resolve: defaults, the deploy mode's GPU memory shares, timers, the model's and
# the engine's facts, the CA bundle, HF_HUB_OFFLINE, the baked directories against their
# manifests), /dev/shm, and one summary line.
# With --cpu (an image built to run on the CPU: the vllm stack's VLLM_DEVICE=cpu) there
# is no GPU detection (and src/config gives no GPU memory share).
# Globals:   APP_ROOT, ENGINE (read); SETTING_SOURCE (written)
# Arguments: [--cpu] stack engine presets_file presets_function   (engine: vllm, trt, or
#            "" for the tool stack)
# Returns:   1 on the first failure, with its message already printed
# With STARTUP_FOR_DOWNLOAD=1 (read; `main.sh --download-models`) it stops after the
# deploy mode, with `settings_resolve <stack> --download` (the CA bundle; HF_HUB_OFFLINE
# must be off; the model directories).
startup_bootstrap() {
  local cpu=0
  if [[ "${1:-}" == --cpu ]]; then
    cpu=1
    shift
  fi
  local stack="$1" engine="$2" presets="$3" presets_fn="$4"
  settings_record_user
  if [[ -n "${engine}" ]]; then
    if [[ "${ENGINE:-${engine}}" != "${engine}" ]]; then
      log_err "[${stack}]" "ENGINE '${ENGINE}' is not served by the ${stack} image, which runs ENGINE=${engine} only; use the image of that engine (or unset ENGINE)"
      return 1
    fi
    settings_default ENGINE "${engine}" image
  fi
  init_deploy_mode "[${stack}]" "${engine}" || return 1
  # `main.sh --download-models`: the deploy mode picks the models; the rest checks them.
  if [[ "${STARTUP_FOR_DOWNLOAD:-}" == 1 ]]; then
    settings_resolve "${stack}" --download
    return
  fi
  if ((cpu == 0)); then
    gpu_init_detection || return 1
    settings_attribute "gpu preset" GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT
  fi
  if [[ ! -r "${presets}" ]]; then
    log_err "[${stack}]" "bootstrap file ${presets} is missing from the image"
    return 1
  fi
  # shellcheck source=/dev/null # the stack's env file: functions only
  source "${presets}" || return 1
  "${presets_fn}" || return 1
  settings_resolve "${stack}" || return 1
  startup_check_shm
  local models="" quant="${CHAT_QUANTIZATION:-${CHAT_MODEL_QUANT:-}}"
  [[ "${DEPLOY_CHAT}" == 1 ]] && models+=" chat=${CHAT_MODEL:-${CHAT_MODEL_PATH}}${quant:+ (${quant})}"
  [[ "${DEPLOY_TOOL}" == 1 ]] && models+=" tool=${TOOL_MODEL:-${TOOL_MODEL_PATH}}"
  local device=CPU # gpu_init_detection exported the GPU facts unless --cpu
  ((cpu == 1)) || device="GPU: ${DETECTED_GPU_NAME} x${GPU_COUNT}${GPU_SM_ARCH:+ (${GPU_SM_ARCH})}"
  log_success "[${stack}]" "ready to start: DEPLOY_MODE=${DEPLOY_MODE}, ${device},${models}"
}
