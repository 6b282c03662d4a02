# shellcheck shell=bash
# Bootstrap of the vllm stack, sourced by run_docker_main (lifecycle.sh) before
# the server starts: deploy mode, one GPU detection, env/runtime.sh (FlashInfer,
# the model's quantization), env/gpu.sh (presets for the detected GPU),
# env/defaults.sh (what is still unset), the shared start-up checks. Its status
# is the bootstrap's status. An image built with VLLM_DEVICE=cpu (vLLM's CPU build,
# recorded in image.env) detects no GPU and reads env/cpu.sh instead of env/gpu.sh.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT:-/app}/common/scripts/startup.sh"

# The settings `main.sh --explain` shows for this stack.
STACK_SETTINGS=(
  DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL
  TOOL_MODEL_PATH CHAT_GPU_FRAC TOOL_GPU_FRAC CHAT_MAX_LEN CHAT_QUANTIZATION
  CHAT_MODEL_QUANT VLLM_DEVICE CHAT_KV_CACHE_BYTES CHAT_ENFORCE_EAGER CHAT_DTYPE
  VLLM_CPU_OMP_THREADS_BIND VLLM_CPU_NUM_OF_RESERVED_CPU KV_DTYPE MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE
  CHAT_ENGINE_PORT CHAT_ENGINE_CMD FLASHINFER_AVAILABLE CHAT_ATTENTION_BACKEND
  ENGINE_STOP_TIMEOUT CHAT_MAX_BODY_BYTES
  "${STARTUP_COMMON_SETTINGS[@]}"
)

# Bootstrap for the device the image was built for. VLLM_DEVICE is the image's (image.env);
# a different value from the user is an error, since the engine's build cannot change at run
# time. A layout without image.env (the tests) takes VLLM_DEVICE as given.
# Globals:   VLLM_DEVICE, APP_ROOT (read)
# Returns:   the status of startup_bootstrap; 1 when VLLM_DEVICE differs from the image's
vllm_bootstrap() {
  local env_dir="${APP_ROOT:-/app}/scripts/env" baked
  baked="$(settings_image_value VLLM_DEVICE)"
  if [[ -n "${baked}" && "${VLLM_DEVICE:-${baked}}" != "${baked}" ]]; then
    log_err "[vllm]" "VLLM_DEVICE '$(util_printable "${VLLM_DEVICE}")' is not this image's device (${baked}): it is chosen when the image is built (docker/build.sh VLLM_DEVICE=cuda|cpu); unset it"
    return 1
  fi
  if [[ "${VLLM_DEVICE:-}" == cpu ]]; then
    startup_bootstrap --cpu vllm vllm "${env_dir}/runtime.sh" "${env_dir}/cpu.sh" "${env_dir}/defaults.sh"
  else
    startup_bootstrap vllm vllm "${env_dir}/runtime.sh" "${env_dir}/gpu.sh" "${env_dir}/defaults.sh"
  fi
}

vllm_bootstrap
