#!/usr/bin/env bash
# Usage:   start_server.sh [--help]
# Summary: The trt stack's start script, exec'd by main.sh (run_docker_main) after
#          bootstrap.sh ran in main.sh's shell: only exported variables arrive here,
#          the GPU facts among them, so nothing is probed again. It checks the
#          TensorRT-LLM engine against the GPU (trt_validate_engine), then starts
#          src.server:app on uvicorn with the warmup probe, like the other stacks.
#          Exit status: 1 when the engine does not fit this GPU; else the server's.
set -Eeuo pipefail

# shellcheck source=docker/common/scripts/server.sh
source "${BASH_SOURCE[0]%/*}/../common/scripts/server.sh"
# shellcheck source=docker/trt/scripts/validate_engine.sh
source "${BASH_SOURCE[0]%/*}/validate_engine.sh"

# Print the Usage/Summary block above.
usage() {
  log_usage "${BASH_SOURCE[0]}"
}

main() {
  case "${1:-}" in
    "") ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      log_err "[trt]" "unknown argument '$1'; start_server.sh takes only --help"
      exit 1
      ;;
  esac
  trt_validate_engine || exit 1
  local status=0
  start_server_with_warmup "[trt]" "${BASH_SOURCE[0]%/*}/../common/scripts/warmup.sh" || status=$?
  exit "${status}"
}

main "$@"
