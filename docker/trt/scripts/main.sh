#!/usr/bin/env bash
# Usage:   main.sh [--help | --explain | --download-models | COMMAND [ARGS...]]
# Summary: The trt stack's container command (run by tini, PID 1): serve the chat model
#          (a pre-built TensorRT-LLM engine run by trtllm-serve) and/or the tool model
#          with src.server:app on uvicorn, through start_server.sh, which first checks
#          the engine against this GPU (architecture, rank count).
#            (no arguments)  bootstrap, require an API key, start the server
#            --help          print this text and exit
#            --explain       bootstrap, print every effective setting and where it
#                            came from (default, gpu preset, deploy mode, engine
#                            config, image, user), then exit without starting anything
#            --download-models  fetch the models DEPLOY_MODE serves into their
#                            directories (a volume mounted there, for an image
#                            built with BAKE_MODELS=0), with the build's own
#                            download steps and manifest; no API key needed
#            COMMAND         bootstrap, then run COMMAND instead of the server
#                            (e.g. bash). In the image, options and commands go
#                            to main.sh by name (tini is the entrypoint):
#                            docker run IMAGE /app/scripts/main.sh --explain
#          Required: TEXT_API_KEY, or TEXT_API_KEY_FILE naming a file that holds it.
#          DEPLOY_MODE=chat|tool|both (default both). Every variable is documented
#          in docker/trt/README.md.
set -Eeuo pipefail

APP_ROOT="${APP_ROOT:-/app}"
# shellcheck source=docker/common/scripts/logs.sh
source "${APP_ROOT}/common/scripts/logs.sh"
# shellcheck source=docker/common/scripts/lifecycle.sh
source "${APP_ROOT}/common/scripts/lifecycle.sh"

# Print the Usage/Summary block above.
# shellcheck disable=SC2329 # called by run_docker_main through its name
usage() {
  log_usage "${BASH_SOURCE[0]}"
}

main() {
  log_check_config || exit 1
  run_docker_main trt "${APP_ROOT}/scripts" usage script "${APP_ROOT}/scripts/start_server.sh" -- "$@"
}

main "$@"
