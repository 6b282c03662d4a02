# shellcheck shell=bash
# vllm stack, second env file: vLLM presets for the GPU detected once by
# startup_bootstrap (the exported GPU_* facts; nothing is probed again). Each goes
# through settings_default with source "gpu preset", so a user value always wins:
#   TORCH_CUDA_ARCH_LIST, PYTORCH_ALLOC_CONF, CUDA_DEVICE_MAX_CONNECTIONS  gpu_apply_env_defaults
#   KV_DTYPE                fp8 where the GPU runs FP8 (sm89 and newer), else auto
#   CHAT_ATTENTION_BACKEND  FLASHINFER when FLASHINFER_AVAILABLE=1; the app passes it to
#                           vLLM as --attention-config.backend (vLLM >= 0.13 ignores the
#                           older VLLM_ATTENTION_BACKEND variable)
#   MAX_NUM_SEQS, MAX_NUM_BATCHED_TOKENS  by GPU memory (see vllm_batch_limits)
#   TENSOR_PARALLEL_SIZE    the visible GPU count when more than one is visible
# With no GPU nothing is set here; env/defaults.sh fills what is left. vLLM's CUDA build
# cannot serve without one: with the chat engine deployed (and no CHAT_ENGINE_CMD of
# your own) that is an error naming the two ways out.

# Print "max_num_seqs max_num_batched_tokens" for a GPU memory size.
# Arguments: vram_gb (whole GiB of GPU 0)
# Outputs:   the two numbers on stdout
vllm_batch_limits() {
  local gb="$1"
  if ((gb >= 70)); then
    printf '256 16384\n'
  elif ((gb >= 40)); then
    printf '128 8192\n'
  elif ((gb >= 20)); then
    printf '64 4096\n'
  else
    printf '32 2048\n'
  fi
}

# Apply the vLLM presets for the detected GPU.
# Globals:   GPU_COUNT, GPU_VRAM_GB, GPU_SM_ARCH, FLASHINFER_AVAILABLE, DEPLOY_CHAT,
#            CHAT_ENGINE_CMD (read); the variables listed at the top of this file (set
#            unless the user set them)
# Returns:   1 when gpu_apply_env_defaults fails, or no GPU is visible to vLLM's engine
vllm_gpu_presets() {
  if ((${GPU_COUNT:-0} == 0)); then
    [[ "${DEPLOY_CHAT:-0}" == 1 && -z "${CHAT_ENGINE_CMD:-}" ]] || return 0
    log_err "[vllm]" "no GPU is visible, and this image runs vLLM's CUDA build (VLLM_DEVICE=cuda): run it with --gpus all (NVIDIA Container Toolkit), or build the CPU flavor (docker/build.sh with VLLM_DEVICE=cpu)"
    return 1
  fi
  gpu_apply_env_defaults || return 1
  settings_attribute "gpu preset" TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
  if [[ -n "${GPU_SM_ARCH:-}" ]] && gpu_supports_fp8 "${GPU_SM_ARCH}"; then
    settings_default KV_DTYPE fp8 "gpu preset"
  else
    settings_default KV_DTYPE auto "gpu preset"
  fi
  if [[ "${FLASHINFER_AVAILABLE:-0}" == 1 ]]; then
    settings_default CHAT_ATTENTION_BACKEND FLASHINFER "gpu preset"
  fi
  local seqs tokens
  read -r seqs tokens < <(vllm_batch_limits "${GPU_VRAM_GB:-0}")
  settings_default MAX_NUM_SEQS "${seqs}" "gpu preset"
  settings_default MAX_NUM_BATCHED_TOKENS "${tokens}" "gpu preset"
  if ((GPU_COUNT > 1)); then
    settings_default TENSOR_PARALLEL_SIZE "${GPU_COUNT}" "gpu preset"
  fi
  return 0
}

vllm_gpu_presets
