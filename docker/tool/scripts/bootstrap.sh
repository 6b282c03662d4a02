# shellcheck shell=bash
# Bootstrap of the tool stack: run_docker_main (lifecycle.sh) sources this file and calls
# stack_bootstrap before the server starts: deploy mode (tool only), one GPU detection,
# env/defaults.sh's presets, then src/config (defaults, every check).

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT}/common/scripts/startup.sh"

# The tool stack's bootstrap: it serves no chat model, so DEPLOY_MODE must be (or default
# to) tool.
# Globals:   DEPLOY_MODE (set when unset: the image's), APP_ROOT (read)
# Returns:   1 when DEPLOY_MODE is another mode; else the status of startup_bootstrap
stack_bootstrap() {
  settings_record_user
  settings_default DEPLOY_MODE tool image # the image's: it serves the tool model only
  normalize_deploy_mode "[tool]" || return 1
  if [[ "${DEPLOY_MODE}" != tool ]]; then
    log_err "[tool]" "DEPLOY_MODE '${DEPLOY_MODE}' is not served by the tool image, which serves DEPLOY_MODE=tool only; use the vllm or trt image for chat"
    return 1
  fi
  startup_bootstrap tool "" "${APP_ROOT}/scripts/env/defaults.sh" tool_presets
}
