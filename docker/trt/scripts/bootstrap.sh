# shellcheck shell=bash
# Bootstrap of the trt stack, sourced by run_docker_main (lifecycle.sh) before
# start_server.sh is exec'd: deploy mode, one GPU detection, env/gpu.sh (GPU_SM,
# allocator settings), then src/config (defaults; the engine's limits, quantization,
# architecture and rank count, read once from its config.json and build_metadata.json;
# every check) and the shared start-up checks. Only exported variables reach
# start_server.sh. Its status is the bootstrap's status.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT}/common/scripts/startup.sh"

# The settings `main.sh --explain` shows for this stack.
STACK_SETTINGS=(
  DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL
  TOOL_MODEL_PATH TRT_ENGINE_REPO TRT_ENGINE_LABEL TRT_ENGINE_DIR CHAT_GPU_FRAC
  TOOL_GPU_FRAC TRT_KV_FREE_GPU_FRAC CHAT_MAX_LEN TRT_MAX_INPUT_LEN TRT_MAX_OUTPUT_LEN
  MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE CHAT_MODEL_QUANT CHAT_ENGINE_PORT
  CHAT_ENGINE_CMD CHAT_MAX_BODY_BYTES GPU_SM TRT_ENGINE_SM_ARCH TRT_ENGINE_RANKS
  "${STARTUP_COMMON_SETTINGS[@]}"
)

startup_bootstrap trt trt "${APP_ROOT}/scripts/env/gpu.sh"
