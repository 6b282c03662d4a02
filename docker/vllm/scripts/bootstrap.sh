# shellcheck shell=bash
# Bootstrap of the vllm stack, sourced by run_docker_main (lifecycle.sh) before
# the server starts: deploy mode, one GPU detection, env/runtime.sh (FlashInfer,
# the model's quantization), env/gpu.sh (presets for the detected GPU),
# env/defaults.sh (what is still unset), the shared start-up checks. Its status
# is the bootstrap's status.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT:-/app}/common/scripts/startup.sh"

# The settings `main.sh --explain` shows for this stack.
STACK_SETTINGS=(
  DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL
  TOOL_MODEL_PATH CHAT_GPU_FRAC TOOL_GPU_FRAC CHAT_MAX_LEN CHAT_QUANTIZATION
  CHAT_MODEL_QUANT KV_DTYPE MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE
  CHAT_ENGINE_PORT CHAT_ENGINE_CMD FLASHINFER_AVAILABLE CHAT_ATTENTION_BACKEND
  ENGINE_STOP_TIMEOUT CHAT_MAX_BODY_BYTES
  "${STARTUP_COMMON_SETTINGS[@]}"
)

startup_bootstrap vllm vllm "${APP_ROOT:-/app}/scripts/env/runtime.sh" \
  "${APP_ROOT:-/app}/scripts/env/gpu.sh" "${APP_ROOT:-/app}/scripts/env/defaults.sh"
