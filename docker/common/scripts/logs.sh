# shellcheck shell=bash
# Logging for every shell script of the layer: build host and container alike.
#
# Every function writes one line to stderr, so a function can log while it
# returns a value on stdout. A line is "[prefix] <mark> message"; the prefix is
# an optional first argument that looks like "[name]" (default: LOG_PREFIX).
#
# Configuration (read at every call, so a change takes effect at once):
#   LOG_LEVEL   debug|info|warn|error (default info); lower levels are dropped
#   LOG_FORMAT  text|json (default text); json writes {"ts","level","prefix","msg"}
#   NO_COLOR    any value disables colour; colour is only used on a terminal
#   LOG_PREFIX  the prefix used when a call gives none
#
# A library: functions only, no options set, safe under `set -u`, and sourcing
# it again is a no-op.

[[ -n "${_LOGS_SH_LOADED:-}" ]] && return 0
_LOGS_SH_LOADED=1

# Report whether LOG_LEVEL and LOG_FORMAT hold valid values.
# Globals:   LOG_LEVEL, LOG_FORMAT (read)
# Outputs:   an error naming the variable, its value and the valid values
# Returns:   0 when both are valid or unset, 1 otherwise
log_check_config() {
  local ok=0
  case "${LOG_LEVEL:-info}" in
    debug | info | warn | error) ;;
    *)
      _log_emit error "[logs]" "✗" "LOG_LEVEL '${LOG_LEVEL}' is not valid; use one of: debug, info, warn, error (default info)"
      ok=1
      ;;
  esac
  case "${LOG_FORMAT:-text}" in
    text | json) ;;
    *)
      _log_emit error "[logs]" "✗" "LOG_FORMAT '${LOG_FORMAT}' is not valid; use text or json (default text)"
      ok=1
      ;;
  esac
  return "${ok}"
}

# Print the help of an executable: its header block from line 2 up to the
# `set -Eeuo pipefail` line, without the leading "# " (the Usage/Summary block).
# Arguments: file (the executable, usually "${BASH_SOURCE[0]}")
# Outputs:   the block on stdout
log_usage() {
  sed -n '2,/^set -Eeuo/p' "$1" | sed '$d; s/^# \{0,1\}//'
}

# Print a debug line (only when LOG_LEVEL=debug).
# Arguments: [prefix] message...
log_debug() { _log_dispatch debug "·" "$@"; }

# Print an informational line.
# Arguments: [prefix] message...
log_info() { _log_dispatch info "" "$@"; }

# Print a success line, marked ✓.
# Arguments: [prefix] message...
log_success() { _log_dispatch info "✓" "$@"; }

# Print a warning line, marked ⚠.
# Arguments: [prefix] message...
log_warn() { _log_dispatch warn "⚠" "$@"; }

# Print an error line, marked ✗.
# Arguments: [prefix] message...
log_err() { _log_dispatch error "✗" "$@"; }

# Print a blank line, then an info line: the start of a new step.
# Arguments: [prefix] message...
log_section() {
  _log_enabled info || return 0
  [[ "${LOG_FORMAT:-text}" == json ]] || printf '\n' >&2
  _log_dispatch info "" "$@"
}

# Split an optional "[prefix]" first argument from the message and emit.
# Arguments: level mark [prefix] message...
_log_dispatch() {
  local level="$1" mark="$2" prefix="${LOG_PREFIX:-}"
  shift 2
  if (($# >= 2)) && [[ "$1" =~ ^\[[^][]*\]$ ]]; then
    prefix="$1"
    shift
  fi
  _log_enabled "${level}" || return 0
  _log_emit "${level}" "${prefix}" "${mark}" "$*"
}

# Whether a line of this level passes LOG_LEVEL (an invalid LOG_LEVEL acts as info).
# Arguments: level
# Returns:   0 when the line is to be printed
_log_enabled() {
  local want have
  case "$1" in debug) want=0 ;; warn) want=2 ;; error) want=3 ;; *) want=1 ;; esac
  case "${LOG_LEVEL:-info}" in debug) have=0 ;; warn) have=2 ;; error) have=3 ;; *) have=1 ;; esac
  ((want >= have))
}

# Write one formatted line to stderr. Never fails.
# Arguments: level prefix mark message
_log_emit() {
  local level="$1" prefix="$2" mark="$3" msg="$4"
  if [[ "${LOG_FORMAT:-text}" == json ]]; then
    local ts
    TZ=UTC printf -v ts '%(%Y-%m-%dT%H:%M:%SZ)T' -1
    prefix="${prefix#[}"
    prefix="${prefix%]}"
    printf '{"ts":"%s","level":"%s","prefix":"%s","msg":"%s"}\n' \
      "${ts}" "${level}" "$(_log_json_escape "${prefix}")" "$(_log_json_escape "${msg}")" >&2
    return 0
  fi
  local line="${prefix:+${prefix} }${mark:+${mark} }${msg}"
  if [[ -t 2 && -z "${NO_COLOR:-}" ]]; then
    local colour
    case "${level}:${mark}" in
      error:*) colour=$'\e[31m' ;;
      warn:*) colour=$'\e[33m' ;;
      info:✓) colour=$'\e[32m' ;;
      debug:*) colour=$'\e[2m' ;;
      *) colour="" ;;
    esac
    [[ -n "${colour}" ]] && line="${colour}${line}"$'\e[0m'
  fi
  printf '%s\n' "${line}" >&2
  return 0
}

# Escape a string for use inside a JSON string literal (RFC 8259).
# Arguments: string
# Outputs:   the escaped string on stdout
_log_json_escape() {
  local s="$1" code char
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\r'/\\r}"
  s="${s//$'\t'/\\t}"
  if [[ "${s}" == *[$'\x01'-$'\x1f']* ]]; then
    for code in {1..31}; do
      printf -v char '%b' "\\x$(printf '%02x' "${code}")"
      [[ "${s}" == *"${char}"* ]] || continue
      s="${s//"${char}"/$(printf '\\u%04x' "${code}")}"
    done
  fi
  printf '%s' "${s}"
}
