# shellcheck shell=bash
# Bootstrap of the trt stack, sourced by run_docker_main (lifecycle.sh) before
# start_server.sh is exec'd: deploy mode, one GPU detection, env/trt.sh (engine
# directory, limits and quantization from the engine's config.json), env/gpu.sh (GPU_SM,
# allocator settings), env/defaults.sh (what is still unset), the shared start-up
# checks. Only exported variables reach start_server.sh. Its status is the
# bootstrap's status.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT:-/app}/common/scripts/startup.sh"

# The settings `main.sh --explain` shows for this stack.
STACK_SETTINGS=(
  DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL
  TOOL_MODEL_PATH TRT_ENGINE_REPO TRT_ENGINE_LABEL TRT_ENGINE_DIR CHAT_GPU_FRAC
  TOOL_GPU_FRAC TRT_KV_FREE_GPU_FRAC CHAT_MAX_LEN TRT_MAX_INPUT_LEN TRT_MAX_OUTPUT_LEN
  MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE CHAT_MODEL_QUANT CHAT_ENGINE_PORT
  CHAT_ENGINE_CMD CHAT_MAX_BODY_BYTES ENGINE_STOP_TIMEOUT GPU_SM
  "${STARTUP_COMMON_SETTINGS[@]}"
)

startup_bootstrap trt trt "${APP_ROOT:-/app}/scripts/env/trt.sh" \
  "${APP_ROOT:-/app}/scripts/env/gpu.sh" "${APP_ROOT:-/app}/scripts/env/defaults.sh"
