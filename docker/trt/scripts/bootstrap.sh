# shellcheck shell=bash
# Bootstrap of the trt stack, sourced by run_docker_main (lifecycle.sh) before
# start_server.sh is exec'd: deploy mode, one GPU detection, env/trt.sh (engine
# directory and limits from the engine's config.json), env/gpu.sh (GPU_SM,
# allocator settings), env/defaults.sh (what is still unset), the shared start-up
# checks. Only exported variables reach start_server.sh. Its status is the
# bootstrap's status.

# shellcheck source=docker/common/scripts/deploy_mode.sh
source "${APP_ROOT:-/app}/common/scripts/deploy_mode.sh"
# shellcheck source=docker/common/scripts/gpu.sh
source "${APP_ROOT:-/app}/common/scripts/gpu.sh"
# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT:-/app}/common/scripts/startup.sh"

# The settings `main.sh --explain` shows for this stack.
STACK_SETTINGS=(
  DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL TOOL_MODEL_PATH
  TRT_ENGINE_REPO TRT_ENGINE_LABEL TRT_ENGINE_DIR
  CHAT_GPU_FRAC TOOL_GPU_FRAC TRT_KV_FREE_GPU_FRAC CHAT_MAX_LEN MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS
  TENSOR_PARALLEL_SIZE CHAT_ENGINE_PORT CHAT_ENGINE_CMD
  HOST PORT UVICORN_WORKERS LOG_LEVEL LOG_FORMAT TEXT_API_KEY TEXT_API_KEY_FILE
  MAX_CONCURRENT_CONNECTIONS TOOL_MAX_BATCH TOOL_MAX_CHARS TOOL_BATCH_WAIT_MS
  SHUTDOWN_GRACE_S ENGINE_STOP_TIMEOUT
  GPU_SM_ARCH GPU_SM DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT
  TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
  HF_HUB_OFFLINE CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE CURL_CA_BUNDLE
  WARMUP_MAX_WAIT WARMUP_WAIT_INTERVAL WARMUP_FAIL_EXIT
)

# The trt image runs TensorRT-LLM as its chat engine: ENGINE must be (or default to) trt.
if [[ "${ENGINE:-trt}" != trt ]]; then
  log_err "[trt]" "ENGINE '${ENGINE}' is not served by the trt image, which runs ENGINE=trt only; use the vllm image for vLLM (or unset ENGINE)"
  return 1
fi
settings_default ENGINE trt image
startup_bootstrap trt trt "${APP_ROOT:-/app}/scripts/env/trt.sh" \
  "${APP_ROOT:-/app}/scripts/env/gpu.sh" "${APP_ROOT:-/app}/scripts/env/defaults.sh"
