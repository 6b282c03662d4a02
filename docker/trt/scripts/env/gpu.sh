# shellcheck shell=bash
# trt stack, second env file: settings for the GPU detected once by startup_bootstrap
# (the exported GPU_* facts; nothing is probed again), source "gpu preset", user
# values win:
#   GPU_SM  the detected architecture (sm90 …), the key engine artifacts are chosen by
#   TORCH_CUDA_ARCH_LIST, PYTORCH_ALLOC_CONF, CUDA_DEVICE_MAX_CONNECTIONS  gpu_apply_env_defaults
# With no GPU nothing is set here.

# Apply the GPU settings of the trt stack.
# Globals:   GPU_COUNT, GPU_SM_ARCH (read); the variables above (set unless set)
# Returns:   1 when gpu_apply_env_defaults fails
trt_gpu_settings() {
  ((${GPU_COUNT:-0} > 0)) || return 0
  [[ -z "${GPU_SM_ARCH:-}" ]] || settings_default GPU_SM "${GPU_SM_ARCH}" "gpu preset"
  gpu_apply_env_defaults || return 1
  settings_attribute "gpu preset" TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
}

trt_gpu_settings
