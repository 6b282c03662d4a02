# shellcheck shell=bash
# Tool-stack presets (startup_bootstrap calls tool_presets after GPU detection): GPU settings
# only when a GPU is visible; a CPU-only host is supported (the classifier is small) and gets
# one warning. Functions only.

# Apply the GPU presets, or warn that the model runs on the CPU.
# Globals:   GPU_COUNT (read); the variables of gpu_apply_env_defaults (set unless set)
# Returns:   1 when gpu_apply_env_defaults fails
tool_presets() {
  if ((${GPU_COUNT:-0} > 0)); then
    gpu_apply_env_defaults || return 1
    settings_attribute "gpu preset" TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
  else
    log_warn "[tool]" "no GPU visible: the tool model runs on the CPU (supported, slower under load)"
  fi
}
