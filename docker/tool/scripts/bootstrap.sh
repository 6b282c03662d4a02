# shellcheck shell=bash
# Bootstrap of the tool stack, sourced by run_docker_main (lifecycle.sh) before
# the server starts: deploy mode, one GPU detection, env/defaults.sh, the shared
# start-up checks. Its status is the bootstrap's status.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT}/common/scripts/startup.sh"

# The tool stack serves no chat model: DEPLOY_MODE must be (or default to) tool.
settings_record_user
settings_default DEPLOY_MODE tool image # the image's: it serves the tool model only
normalize_deploy_mode "[tool]" || return 1
if [[ "${DEPLOY_MODE}" != tool ]]; then
  log_err "[tool]" "DEPLOY_MODE '${DEPLOY_MODE}' is not served by the tool image, which serves DEPLOY_MODE=tool only; use the vllm or trt image for chat"
  return 1
fi
startup_bootstrap tool "" "${APP_ROOT}/scripts/env/defaults.sh"
