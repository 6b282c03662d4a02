# shellcheck shell=bash
# The TensorRT-LLM engine check start_server.sh runs before the server starts: a
# pre-built engine only runs on the GPU architecture and GPU count it was built for.
#
# A library: functions only, safe under `set -u`. Needs logs.sh.

# shellcheck source=docker/common/scripts/logs.sh
source "${BASH_SOURCE[0]%/*}/../common/scripts/logs.sh"

# Check the engine against this machine when the chat model is deployed (tool-only
# skips it): TRT_ENGINE_DIR holds config.json, build_metadata.json and rank*.engine; the
# engine's architecture (build_metadata.json's sm_arch) equals GPU_SM (env/gpu.sh: the
# detected GPU_SM_ARCH unless the user set it); its rank count equals the visible GPU
# count. The engine's facts were read once by the bootstrap (src/config/resolve.py:
# TRT_ENGINE_SM_ARCH, TRT_ENGINE_RANKS), the GPU's too; nothing is read or probed again.
# Globals:   DEPLOY_CHAT, TRT_ENGINE_DIR, TRT_ENGINE_SM_ARCH, TRT_ENGINE_RANKS, GPU_SM,
#            GPU_SM_ARCH, GPU_COUNT, DETECTED_GPU_NAME (read)
# Outputs:   one error naming what is wrong and the fix; one success line
# Returns:   0 when the engine fits (or chat is not deployed), 1 otherwise
trt_validate_engine() {
  if [[ "${DEPLOY_CHAT:-0}" != 1 ]]; then
    log_info "[trt]" "DEPLOY_MODE=${DEPLOY_MODE:-tool}: no chat engine to check"
    return 0
  fi
  local dir="${TRT_ENGINE_DIR:-}" ranks="${TRT_ENGINE_RANKS:-0}" engine_sm="${TRT_ENGINE_SM_ARCH:-}" file
  if [[ ! -d "${dir}" ]]; then
    log_err "[trt]" "TRT_ENGINE_DIR '${dir}' is not a directory: the image holds no TensorRT-LLM engine; rebuild with TRT_ENGINE_REPO and TRT_ENGINE_LABEL, or mount an engine there"
    return 1
  fi
  for file in config.json build_metadata.json; do
    if [[ ! -f "${dir}/${file}" ]]; then
      log_err "[trt]" "missing engine metadata: ${dir}/${file}; the engine's GPU architecture cannot be checked; rebuild the image with an engine that has ${file}"
      return 1
    fi
  done
  if ((ranks == 0)); then
    log_err "[trt]" "no engine files (rank*.engine) in TRT_ENGINE_DIR '${dir}'; rebuild the image with a complete engine (TRT_ENGINE_LABEL)"
    return 1
  fi
  if [[ -z "${engine_sm}" ]]; then
    log_err "[trt]" "${dir}/build_metadata.json has no valid sm_arch (e.g. \"sm90\"); the engine's GPU architecture is unknown; rebuild the image with a complete engine"
    return 1
  fi
  if ((${GPU_COUNT:-0} == 0)); then
    log_err "[trt]" "no NVIDIA GPU visible, but the TensorRT-LLM engine (${engine_sm}) needs one; run with --gpus (or use DEPLOY_MODE=tool)"
    return 1
  fi
  local gpu_sm="${GPU_SM:-${GPU_SM_ARCH:-}}" set_by=""
  [[ -z "${GPU_SM:-}" || "${GPU_SM}" == "${GPU_SM_ARCH:-}" ]] || set_by=", GPU_SM set"
  if [[ "${engine_sm}" != "${gpu_sm}" ]]; then
    log_err "[trt]" "GPU ARCHITECTURE MISMATCH: engine ${engine_sm}, this GPU ${gpu_sm:-unknown} (${DETECTED_GPU_NAME:-Unknown}${set_by}); use an image built with a TRT_ENGINE_LABEL for ${gpu_sm:-this GPU}, or run on a ${engine_sm} GPU"
    return 1
  fi
  if ((ranks != GPU_COUNT)); then
    log_err "[trt]" "the engine has ${ranks} rank(s) (rank*.engine) but ${GPU_COUNT} GPU(s) are visible; make exactly ${ranks} visible (--gpus ${ranks} or CUDA_VISIBLE_DEVICES), or use an engine built for ${GPU_COUNT}"
    return 1
  fi
  log_success "[trt]" "engine ${engine_sm} x${ranks} matches ${DETECTED_GPU_NAME:-the GPU} x${GPU_COUNT}"
}
