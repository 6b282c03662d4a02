#!/usr/bin/env bash
# Usage:   docker/build.sh [--help] [-- docker-build-options...]
# Summary: Build (and push) a text-inference image. DEPLOY_MODE=tool goes to the
#          tool stack (docker/tool/build.sh) whatever ENGINE says; chat and both
#          go to docker/$ENGINE/build.sh. Every setting is an environment variable
#          (docker/common/README.md lists them all):
#            ENGINE       vllm | trt (default vllm)
#            DEPLOY_MODE  chat | tool | both (default both)
#            VLLM_DEVICE  cuda | cpu (ENGINE=vllm only; default cuda): cpu builds
#                         the vllm stack with vLLM's CPU build (no GPU needed)
#            CHAT_MODEL, TOOL_MODEL, TRT_ENGINE_LABEL, TAG, DOCKER_USERNAME,
#            PUSH=0 (build only), DRY_RUN=1 (print the command and the context)
#          HF_TOKEN, when set, reaches the build only as the hf_token secret.
#
# Examples:
#   # vLLM, chat and tool model
#   ENGINE=vllm DEPLOY_MODE=both CHAT_MODEL=Qwen/Qwen3-8B-AWQ \
#     TOOL_MODEL=SamLowe/roberta-base-go_emotions TAG=vllm-qwen3-8b \
#     DOCKER_USERNAME=myuser docker/build.sh
#   # vLLM on the CPU (laptops, CI): a small model outside the (GPU) allowlist, not pushed
#   VLLM_DEVICE=cpu ALLOW_UNLISTED_MODELS=1 CHAT_MODEL=Qwen/Qwen2.5-0.5B-Instruct \
#     TOOL_MODEL=ProsusAI/finbert TAG=vllm-cpu-qwen05b PUSH=0 docker/build.sh
#   # TensorRT-LLM, chat only, an engine built for H100 (sm90)
#   ENGINE=trt DEPLOY_MODE=chat CHAT_MODEL=yapwithai/qwen3-30b-trt-awq \
#     TRT_ENGINE_LABEL=sm90_trt-llm-0.17.0_cuda12.8 TAG=trt-qwen30b-sm90 \
#     DOCKER_USERNAME=myuser docker/build.sh
#   # tool model only, built locally, not pushed
#   DEPLOY_MODE=tool TOOL_MODEL=SamLowe/roberta-base-go_emotions TAG=tool-emotions \
#     PUSH=0 docker/build.sh
#   # what would be built, without Docker
#   DRY_RUN=1 PUSH=0 DEPLOY_MODE=tool TOOL_MODEL=ProsusAI/finbert docker/build.sh
set -Eeuo pipefail

DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/build/stack.sh
source "${DOCKER_DIR}/common/scripts/build/stack.sh"

main() {
  case "${1:-}" in
    -h | --help)
      log_usage "${BASH_SOURCE[0]}"
      return 0
      ;;
  esac
  build_init_router_defaults
  local stack engines modes=tool
  if [[ "${DEPLOY_MODE}" == tool ]]; then
    stack=tool
  else
    # Any other DEPLOY_MODE goes to the engine's stack, whose validation checks it.
    engines="$(build_valid_values engines)" || return 1
    if [[ " ${engines} " != *" ${ENGINE} "* ]]; then
      log_err "[build]" "ENGINE '${ENGINE}' is not valid; use one of: ${engines// /, } (or DEPLOY_MODE=tool for the tool stack)"
      return 1
    fi
    modes="$(build_valid_values deploy-modes)" || return 1
    stack="${ENGINE}"
  fi
  # The tag prefix, before routing (unset: the stack's default fits). A DEPLOY_MODE that
  # is no mode is left to the stack's validation, which names the valid ones.
  if [[ -n "${TAG:-}" && " ${modes} " == *" ${DEPLOY_MODE} "* ]]; then
    build_check_tag || return 1
  fi
  export ENGINE DEPLOY_MODE
  log_info "[build]" "ENGINE=${ENGINE} DEPLOY_MODE=${DEPLOY_MODE}${VLLM_DEVICE:+ VLLM_DEVICE=${VLLM_DEVICE}} → docker/${stack}/build.sh"
  exec "${DOCKER_DIR}/${stack}/build.sh" "$@"
}

main "$@"
