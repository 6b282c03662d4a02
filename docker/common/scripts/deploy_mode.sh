# shellcheck shell=bash
# Deploy mode: which models a container serves (DEPLOY_MODE=chat|tool|both).
#
#   init_deploy_mode [prefix] [engine]   the three steps below, in order
#     normalize_deploy_mode [prefix]     DEPLOY_MODE: chat|tool|both (unset/empty → both)
#     set_deploy_flags                   DEPLOY_CHAT, DEPLOY_TOOL → 0|1
#     validate_deploy_models [prefix] [engine]   the models the mode needs were built in
#
# Every function reports failure with a non-zero status and one error line; none
# exits the caller's shell. A typo in DEPLOY_MODE is an error, never "both".
# The rule is the build's (docker/common/download/validate.py, src/config/models.py
# DEPLOY_MODES) and the app's (src/config/settings.py): exactly chat, tool or both,
# lower case, no blanks; unset or empty means both.
#
# A library: functions only, no options set, safe under `set -u`; sourcing it
# again is harmless.

# shellcheck source=docker/common/scripts/logs.sh
source "${BASH_SOURCE[0]%/*}/logs.sh"
# shellcheck source=docker/common/scripts/util.sh
source "${BASH_SOURCE[0]%/*}/util.sh"

# Normalize DEPLOY_MODE in place and export it: unset or empty → both; chat, tool
# and both stay as they are; anything else ("Chat", " both ", "tools") is an error,
# as it is for the build.
# Globals:   DEPLOY_MODE (read, then set and exported)
# Arguments: [prefix] log prefix (default [deploy])
# Outputs:   an error on stderr naming the value and the valid ones
# Returns:   0 when valid, 1 otherwise (DEPLOY_MODE is then left as it was)
normalize_deploy_mode() {
  local mode
  _deploy_parse_mode "${1:-[deploy]}" mode || return 1
  export DEPLOY_MODE="${mode}"
}

# Export DEPLOY_CHAT and DEPLOY_TOOL (0 or 1) for a normalized DEPLOY_MODE.
# Globals:   DEPLOY_MODE (read; unset means both), DEPLOY_CHAT, DEPLOY_TOOL (exported)
# Returns:   1 when DEPLOY_MODE is not normalized (call normalize_deploy_mode first)
set_deploy_flags() {
  local chat tool
  if ! _deploy_flags_of "${DEPLOY_MODE:-both}" chat tool; then
    log_err "[deploy]" "DEPLOY_MODE '$(util_printable "${DEPLOY_MODE}")' is not normalized; call normalize_deploy_mode first"
    return 1
  fi
  export DEPLOY_CHAT="${chat}" DEPLOY_TOOL="${tool}"
}

# Check that the models the deploy mode serves were built into the image: chat
# needs CHAT_MODEL, tool needs TOOL_MODEL. With engine trt and a chat model, a
# missing TRT_ENGINE_REPO is only a warning: the engine must then be present at
# TRT_ENGINE_DIR. Every missing variable is reported, not only the first.
# Called on its own (DEPLOY_CHAT or DEPLOY_TOOL unset), it derives both from
# DEPLOY_MODE as normalize_deploy_mode would, without exporting anything.
# Globals:   DEPLOY_MODE, DEPLOY_CHAT, DEPLOY_TOOL, CHAT_MODEL, TOOL_MODEL,
#            TRT_ENGINE_REPO, TRT_ENGINE_DIR, ENGINE (read)
# Arguments: [prefix] log prefix (default [deploy])
#            [engine] vllm, trt or empty for none (default: ENGINE)
# Outputs:   errors and the warning on stderr
# Returns:   0 when every needed model is set, 1 otherwise (or DEPLOY_MODE invalid)
validate_deploy_models() {
  local prefix="${1:-[deploy]}" engine="${2-${ENGINE:-}}" mode="${DEPLOY_MODE:-both}" ok=0
  local chat="${DEPLOY_CHAT:-}" tool="${DEPLOY_TOOL:-}"
  case "${engine}" in
    "" | vllm | trt) ;;
    *)
      log_err "${prefix}" "ENGINE '$(util_printable "${engine}")' is not valid; use vllm or trt"
      return 1
      ;;
  esac
  if [[ -z "${chat}" || -z "${tool}" ]]; then # called on its own: the flags come from DEPLOY_MODE
    _deploy_parse_mode "${prefix}" mode || return 1
    _deploy_flags_of "${mode}" chat tool
  fi
  if [[ "${chat}" == 1 && -z "${CHAT_MODEL:-}" ]]; then
    log_err "${prefix}" "CHAT_MODEL is not set but DEPLOY_MODE=${mode} serves a chat model: the image was built without it; rebuild with CHAT_MODEL=<repo id> or run with DEPLOY_MODE=tool"
    ok=1
  fi
  if [[ "${tool}" == 1 && -z "${TOOL_MODEL:-}" ]]; then
    log_err "${prefix}" "TOOL_MODEL is not set but DEPLOY_MODE=${mode} serves a tool model: the image was built without it; rebuild with TOOL_MODEL=<repo id> or run with DEPLOY_MODE=chat"
    ok=1
  fi
  if [[ "${engine}" == trt && "${chat}" == 1 && -z "${TRT_ENGINE_REPO:-}" ]]; then
    log_warn "${prefix}" "TRT_ENGINE_REPO is not set: the TensorRT-LLM engine must already be present at TRT_ENGINE_DIR${TRT_ENGINE_DIR:+ (${TRT_ENGINE_DIR})}"
  fi
  return "${ok}"
}

# Normalize DEPLOY_MODE, export the flags and validate the models, in that order.
# Globals:   see normalize_deploy_mode, set_deploy_flags, validate_deploy_models
# Arguments: [prefix] log prefix (default [deploy]); [engine] vllm, trt or empty
# Returns:   the status of the first step that fails, 0 when all pass
init_deploy_mode() {
  local prefix="${1:-[deploy]}"
  normalize_deploy_mode "${prefix}" || return 1
  set_deploy_flags || return 1
  validate_deploy_models "${prefix}" "${2-${ENGINE:-}}" || return 1
}

# Parse DEPLOY_MODE: unset or empty → both; exactly chat, tool or both otherwise.
# Globals:   DEPLOY_MODE (read)
# Arguments: prefix, out (the name of the caller's variable that gets chat, tool or both)
# Outputs:   an error naming the value and the valid ones
# Returns:   0 when valid, 1 otherwise (out is then left as it was)
_deploy_parse_mode() {
  local raw="${DEPLOY_MODE:-}" blank
  case "${raw:-both}" in
    chat | tool | both)
      printf -v "$2" '%s' "${raw:-both}"
      return 0
      ;;
  esac
  blank="${raw}"
  util_trim blank
  if [[ -z "${blank}" ]]; then
    log_err "$1" "DEPLOY_MODE '$(util_printable "${raw}")' is blank; use chat, tool or both (or leave it unset for both)"
  else
    log_err "$1" "DEPLOY_MODE '$(util_printable "${raw}")' is not valid; use one of: chat, tool, both (default both)"
  fi
  return 1
}

# The flags of a normalized mode.
# Arguments: mode, chat_out, tool_out (the names of the caller's variables that get 0 or 1)
# Returns:   1 when mode is not chat, tool or both
_deploy_flags_of() {
  local flags
  case "$1" in
    chat) flags="1 0" ;;
    tool) flags="0 1" ;;
    both) flags="1 1" ;;
    *) return 1 ;;
  esac
  printf -v "$2" '%s' "${flags% *}"
  printf -v "$3" '%s' "${flags#* }"
}
