# shellcheck shell=bash
# Bootstrap of the vllm stack, sourced by run_docker_main (lifecycle.sh) before
# the server starts: deploy mode, one GPU detection, env/runtime.sh (FlashInfer,
# the model's quantization), env/gpu.sh (presets for the detected GPU),
# env/defaults.sh (what is still unset), the shared start-up checks. Its status
# is the bootstrap's status.

# shellcheck source=docker/common/scripts/deploy_mode.sh
source "${APP_ROOT:-/app}/common/scripts/deploy_mode.sh"
# shellcheck source=docker/common/scripts/gpu.sh
source "${APP_ROOT:-/app}/common/scripts/gpu.sh"
# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT:-/app}/common/scripts/startup.sh"

# The settings `main.sh --explain` shows for this stack.
STACK_SETTINGS=(
  DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL TOOL_MODEL_PATH
  CHAT_GPU_FRAC TOOL_GPU_FRAC CHAT_MAX_LEN CHAT_QUANTIZATION CHAT_MODEL_QUANT KV_DTYPE
  MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE CHAT_ENGINE_PORT CHAT_ENGINE_CMD
  FLASHINFER_AVAILABLE VLLM_ATTENTION_BACKEND
  HOST PORT UVICORN_WORKERS LOG_LEVEL LOG_FORMAT TEXT_API_KEY TEXT_API_KEY_FILE
  MAX_CONCURRENT_CONNECTIONS TOOL_MAX_BATCH TOOL_MAX_CHARS TOOL_BATCH_WAIT_MS
  SHUTDOWN_GRACE_S ENGINE_STOP_TIMEOUT
  GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT
  TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
  HF_HUB_OFFLINE CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE CURL_CA_BUNDLE
  WARMUP_MAX_WAIT WARMUP_WAIT_INTERVAL WARMUP_FAIL_EXIT
)

# The vllm image runs vLLM as its chat engine: ENGINE must be (or default to) vllm.
if [[ "${ENGINE:-vllm}" != vllm ]]; then
  log_err "[vllm]" "ENGINE '${ENGINE}' is not served by the vllm image, which runs ENGINE=vllm only; use the trt image for TensorRT-LLM (or unset ENGINE)"
  return 1
fi
settings_default ENGINE vllm image
startup_bootstrap vllm vllm "${APP_ROOT:-/app}/scripts/env/runtime.sh" \
  "${APP_ROOT:-/app}/scripts/env/gpu.sh" "${APP_ROOT:-/app}/scripts/env/defaults.sh"
