#!/usr/bin/env bash
# Usage:   docker/trt/build.sh [--help] [-- docker-build-options...]
# Summary: Build (and push) the TensorRT-LLM image: a pre-built engine for one GPU
#          architecture and/or a tool model. Usually started by docker/build.sh (ENGINE=trt).
#          Settings are environment variables (all in docker/common/README.md):
#            DEPLOY_MODE       chat | tool | both (default both)
#            CHAT_MODEL        an allowlisted TensorRT-LLM repo (src/config/models.py)
#            TRT_ENGINE_REPO   the repo holding trt-llm/engines/<label>/ (default CHAT_MODEL)
#            TRT_ENGINE_LABEL  required with chat: sm{arch}_trt-llm-{version}_cuda{version}
#            TOOL_MODEL        an allowlisted sequence classifier or a local dir
#            TAG               starts with trt- (tool-, when DEPLOY_MODE=tool)
#            DOCKER_USERNAME / IMAGE_REPO, PUSH=0, DRY_RUN=1, HF_TOKEN (a secret)
#          Options after "--" go to docker build unchanged.
# Example: DEPLOY_MODE=chat CHAT_MODEL=yapwithai/qwen3-30b-trt-awq \
#            TRT_ENGINE_LABEL=sm90_trt-llm-0.17.0_cuda12.8 TAG=trt-qwen30b-sm90 \
#            DOCKER_USERNAME=myuser docker/trt/build.sh
set -Eeuo pipefail

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/build/stack.sh
source "${STACK_DIR}/../common/scripts/build/stack.sh"

main() {
  build_stack_main trt "${STACK_DIR}" "${BASH_SOURCE[0]}" "$@"
}

main "$@"
