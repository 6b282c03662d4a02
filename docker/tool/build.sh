#!/usr/bin/env bash
# Usage:   docker/tool/build.sh [--help] [-- docker-build-options...]
# Summary: Build (and push) the tool-only image: one sequence classifier, no chat
#          engine (a CPU base works). docker/build.sh routes DEPLOY_MODE=tool here.
#          Settings are environment variables (all in docker/common/README.md):
#            TOOL_MODEL   an allowlisted sequence classifier (src/config/models.py)
#                         or a local dir
#            TAG          starts with tool- (default tool-latest)
#            DOCKER_USERNAME / IMAGE_REPO, PUSH=0, DRY_RUN=1, HF_TOKEN (a secret)
#          Options after "--" go to docker build unchanged.
# Example: TOOL_MODEL=SamLowe/roberta-base-go_emotions TAG=tool-emotions \
#            DOCKER_USERNAME=myuser docker/tool/build.sh
set -Eeuo pipefail

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/build/stack.sh
source "${STACK_DIR}/../common/scripts/build/stack.sh"

main() {
  build_stack_main tool "${STACK_DIR}" "${BASH_SOURCE[0]}" "$@"
}

main "$@"
