# shellcheck shell=bash
# Model validation before any build: runs docker/common/download/validate.py
# (standard library only) against the allowlists in src/config/models.py.
#
# A library: functions and constants only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/logs.sh
source "$(dirname "${BASH_SOURCE[0]}")/../logs.sh"

# The validator, next to the build-time download entry points.
BUILD_VALIDATE_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/download/validate.py"

# Validate the deploy mode, the engine and the models of a build, and the shape
# of the other values it hands to Docker; the validator prints one line per check.
# Globals:   BUILD_VALIDATE_PY, ALLOW_UNLISTED_MODELS, ROOT_DIR, CHAT_MODEL_REVISION,
#            TOOL_MODEL_REVISION, TRT_ENGINE_REVISION, HF_ENDPOINT, BASE_IMAGE,
#            VLLM_DEVICE (read)
# Arguments: engine deploy_mode chat_model tool_model [trt_engine_repo] [trt_engine_label]
# Outputs:   one "[validate] ✓/⚠/✗ …" line per check on stderr
# Returns:   0 when all checks pass, 1 otherwise (also when python3 or the
#            validator is missing)
validate_models_for_deploy_common() {
  _build_validator_ready || return 1
  ENGINE="$1" DEPLOY_MODE="$2" CHAT_MODEL="$3" TOOL_MODEL="$4" \
    TRT_ENGINE_REPO="${5:-}" TRT_ENGINE_LABEL="${6:-}" \
    ALLOW_UNLISTED_MODELS="${ALLOW_UNLISTED_MODELS:-}" ROOT_DIR="${ROOT_DIR:-}" \
    CHAT_MODEL_REVISION="${CHAT_MODEL_REVISION:-}" TOOL_MODEL_REVISION="${TOOL_MODEL_REVISION:-}" \
    TRT_ENGINE_REVISION="${TRT_ENGINE_REVISION:-}" HF_ENDPOINT="${HF_ENDPOINT:-}" \
    BASE_IMAGE="${BASE_IMAGE:-}" VLLM_DEVICE="${VLLM_DEVICE:-}" python3 "${BUILD_VALIDATE_PY}" || {
    log_err "[build]" "model validation failed; nothing was built"
    return 1
  }
}

# Print the valid values of ENGINE or DEPLOY_MODE, space-separated, from the one
# list in src/config/models.py (through the validator).
# Globals:   BUILD_VALIDATE_PY, ROOT_DIR (read)
# Arguments: engines | deploy-modes
# Outputs:   the values on stdout (example: "vllm trt")
# Returns:   1 when python3 or the validator is missing or fails
build_valid_values() {
  _build_validator_ready || return 1
  ROOT_DIR="${ROOT_DIR:-}" python3 "${BUILD_VALIDATE_PY}" --list "$1"
}

# Check that python3 and the validator are there.
# Globals:   BUILD_VALIDATE_PY (read)
# Returns:   1 with a message naming what is missing
_build_validator_ready() {
  if ! command -v python3 >/dev/null 2>&1; then
    log_err "[build]" "python3 not found on PATH; model validation needs Python 3 (standard library only): apt-get install python3"
    return 1
  fi
  if [[ ! -f "${BUILD_VALIDATE_PY}" ]]; then
    log_err "[build]" "validator '${BUILD_VALIDATE_PY}' is missing; run the build from a complete checkout"
    return 1
  fi
}
