#!/usr/bin/env bash
# Usage:   docker/vllm/build.sh [--help] [-- docker-build-options...]
# Summary: Build (and push) the vLLM image: a pre-quantized chat model served by
#          vLLM and/or a tool model. Usually started by docker/build.sh (ENGINE=vllm).
#          Settings are environment variables (all in docker/common/README.md):
#            DEPLOY_MODE  chat | tool | both (default both)
#            CHAT_MODEL   an allowlisted repo id (src/config/models.py) or a local dir
#            TOOL_MODEL   an allowlisted sequence classifier or a local dir
#            TAG          starts with vllm- (tool-, when DEPLOY_MODE=tool)
#            DOCKER_USERNAME / IMAGE_REPO, PUSH=0, DRY_RUN=1, HF_TOKEN (a secret)
#          Options after "--" go to docker build unchanged.
# Example: DEPLOY_MODE=chat CHAT_MODEL=Qwen/Qwen3-8B-AWQ TAG=vllm-qwen3-8b \
#            DOCKER_USERNAME=myuser docker/vllm/build.sh
set -Eeuo pipefail

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/build/stack.sh
source "${STACK_DIR}/../common/scripts/build/stack.sh"

main() {
  build_stack_main vllm "${STACK_DIR}" "${BASH_SOURCE[0]}" "$@"
}

main "$@"
