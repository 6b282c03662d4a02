# shellcheck shell=bash
# Tool-stack defaults, sourced by bootstrap.sh after GPU detection.
# GPU settings only when a GPU is visible; a CPU-only host is supported (the
# classifier is small) and gets one warning.

if ((${GPU_COUNT:-0} > 0)); then
  gpu_apply_env_defaults
  settings_attribute "gpu preset" TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
else
  log_warn "[tool]" "no GPU visible: the tool model runs on the CPU (supported, slower under load)"
fi
