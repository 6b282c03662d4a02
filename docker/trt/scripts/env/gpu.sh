# shellcheck shell=bash
# trt stack, env file (functions only; startup_bootstrap calls trt_gpu_settings): settings
# for the GPU detected once by startup_bootstrap
# (the exported GPU_* facts; nothing is probed again), source "gpu preset", user
# values win:
#   GPU_SM  the architecture engine artifacts are resolved and checked against
#           (validate_engine.sh): the detected GPU_SM_ARCH, or the user's value
#           (sm90; sm_90 and 90 accepted), e.g. when detection cannot tell
#   TORCH_CUDA_ARCH_LIST, PYTORCH_ALLOC_CONF, CUDA_DEVICE_MAX_CONNECTIONS  gpu_apply_env_defaults
# With no GPU only a user's GPU_SM is checked.

# Apply the GPU settings of the trt stack.
# Globals:   GPU_COUNT, GPU_SM_ARCH, DETECTED_GPU_NAME (read); GPU_SM (normalised when
#            the user set it, else set) and the variables above (set unless set)
# Outputs:   an error for a GPU_SM that is no architecture; a warning when the user's
#            GPU_SM differs from the detected one
# Returns:   1 on that error or when gpu_apply_env_defaults fails
trt_gpu_settings() {
  if [[ -n "${GPU_SM:-}" ]]; then
    local sm="${GPU_SM/sm_/sm}"
    [[ "${sm}" =~ ^[0-9]+$ ]] && sm="sm${sm}"
    if [[ ! "${sm}" =~ ^sm[0-9]{2,3}$ ]]; then
      log_err "[trt]" "GPU_SM '${GPU_SM}' is not a GPU architecture; use the form sm90 (sm80, sm89, sm90, sm100 …) or unset it to use the detected one"
      return 1
    fi
    GPU_SM="${sm}"
    settings_default GPU_SM "${sm}" user
    if [[ -n "${GPU_SM_ARCH:-}" && "${GPU_SM}" != "${GPU_SM_ARCH}" ]]; then
      log_warn "[trt]" "GPU_SM=${GPU_SM} (user) differs from the detected ${GPU_SM_ARCH} (${DETECTED_GPU_NAME:-GPU 0}); the engine is checked against GPU_SM"
    fi
  fi
  ((${GPU_COUNT:-0} > 0)) || return 0
  [[ -z "${GPU_SM_ARCH:-}" ]] || settings_default GPU_SM "${GPU_SM_ARCH}" "gpu preset"
  gpu_apply_env_defaults || return 1
  settings_attribute "gpu preset" TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
}
