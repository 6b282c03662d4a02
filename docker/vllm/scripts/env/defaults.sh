# shellcheck shell=bash
# vllm stack, last env file: plain defaults for what is still unset (source
# "default"), then, with chat deployed, a check of the values vLLM cannot run with.

# The KV cache dtypes the stack passes to vLLM: the same list as KV_DTYPES in
# src/config/settings.py (tests/python/test_dockerfiles.py keeps them equal). vLLM has
# no int8 KV cache, so an A100 (no FP8 hardware) keeps auto.
VLLM_KV_DTYPES=(auto fp8 fp8_e4m3 fp8_e5m2)

# Set the remaining defaults and check the chat engine settings.
# Globals:   CHAT_MODEL_PATH, TOOL_MODEL_PATH, SERVED_MODEL_NAME, CHAT_ENGINE_PORT,
#            TENSOR_PARALLEL_SIZE, KV_DTYPE (set unless set); CHAT_MODEL, GPU_COUNT,
#            VLLM_KV_DTYPES (read)
# Outputs:   one error per bad value, naming it and what is valid; a warning for FP8 KV
#            cache on a GPU without FP8
# Returns:   1 when a value is not valid
vllm_defaults() {
  settings_default CHAT_MODEL_PATH /opt/models/chat default
  settings_default TOOL_MODEL_PATH /opt/models/tool default
  settings_default SERVED_MODEL_NAME "${CHAT_MODEL:-chat}" default
  settings_default CHAT_ENGINE_PORT 8001 default
  settings_default TENSOR_PARALLEL_SIZE 1 default
  settings_default KV_DTYPE auto default
  [[ "${DEPLOY_CHAT:-0}" == 1 ]] || return 0
  local ok=0 valid
  valid="$(IFS=,; printf '%s' "${VLLM_KV_DTYPES[*]}")"
  if [[ ",${valid}," != *",${KV_DTYPE},"* ]]; then
    log_err "[vllm]" "KV_DTYPE '${KV_DTYPE}' is not valid; use one of: ${valid//,/, }"
    ok=1
  elif [[ "${KV_DTYPE}" == fp8* && -n "${GPU_SM_ARCH:-}" ]] && ! gpu_supports_fp8 "${GPU_SM_ARCH}"; then
    log_warn "[vllm]" "KV_DTYPE=${KV_DTYPE} on ${DETECTED_GPU_NAME:-this GPU} (${GPU_SM_ARCH}), which has no FP8 hardware: slower, or refused by vLLM; KV_DTYPE=auto is the preset here"
  fi
  if [[ ! "${TENSOR_PARALLEL_SIZE}" =~ ^[1-9][0-9]?$ ]]; then
    log_err "[vllm]" "TENSOR_PARALLEL_SIZE '${TENSOR_PARALLEL_SIZE}' is not valid; use a whole number from 1 to the visible GPU count (${GPU_COUNT:-0})"
    ok=1
  elif ((${GPU_COUNT:-0} > 0 && TENSOR_PARALLEL_SIZE > GPU_COUNT)); then
    log_err "[vllm]" "TENSOR_PARALLEL_SIZE ${TENSOR_PARALLEL_SIZE} is more than the ${GPU_COUNT} visible GPU(s); lower it or make more GPUs visible (--gpus, CUDA_VISIBLE_DEVICES)"
    ok=1
  fi
  return "${ok}"
}

vllm_defaults
