# shellcheck shell=bash
# Effective runtime settings and where each one came from.
#
# Bootstrap decides many settings (memory fractions, GPU presets, engine
# defaults). Each decision goes through settings_default, which never overrides
# a value the user set and records the source of the value it keeps:
#   user         set in the environment before bootstrap started
#   default      the stack's plain default
#   deploy mode  chosen for the deploy mode (chat, tool, both)
#   gpu preset   chosen for the detected GPU
#   image        baked into the image at build time (ENV, listed in image.env)
# `main.sh --explain` prints them all with settings_explain.
#
# A library: functions only, safe under `set -u`; sourcing it again keeps what
# was recorded.

# shellcheck source=docker/common/scripts/util.sh
source "${BASH_SOURCE[0]%/*}/util.sh"

declare -gA SETTING_SOURCE 2>/dev/null || true # an older bash without -g: the array is made on first use

# Mark every listed variable that is already set (and non-empty): "image" when
# its value is the one the image baked in (recorded in $APP_ROOT/image.env by
# the Dockerfile), "user" otherwise. Call it first, before any default is applied.
# Globals:   SETTING_SOURCE (written), APP_ROOT (read)
# Arguments: variable names...
settings_record_user() {
  local name line image_env
  local -A baked=()
  image_env="$(util_app_root)/image.env"
  if [[ -r "${image_env}" ]]; then
    while IFS= read -r line; do
      [[ "${line}" == [A-Za-z_]*=* ]] && baked["${line%%=*}"]="${line#*=}"
    done <"${image_env}"
  fi
  for name in "$@"; do
    [[ -n "${!name:-}" && -z "${SETTING_SOURCE[${name}]:-}" ]] || continue
    if [[ -n "${baked[${name}]+set}" && "${baked[${name}]}" == "${!name}" ]]; then
      SETTING_SOURCE["${name}"]=image
    else
      SETTING_SOURCE["${name}"]=user
    fi
  done
  return 0
}

# Print the value the image baked in for a variable (its line in $APP_ROOT/image.env);
# nothing when the image did not set it, or in a layout without image.env (tests).
# Globals:   APP_ROOT (read)
# Arguments: name
# Outputs:   the value on stdout
settings_image_value() {
  local line image_env
  image_env="$(util_app_root)/image.env"
  [[ -r "${image_env}" ]] || return 0
  while IFS= read -r line; do
    if [[ "${line}" == "$1="* ]]; then
      printf '%s\n' "${line#*=}"
      return 0
    fi
  done <"${image_env}"
}

# Set and export a variable unless it already has a value; record the source.
# Globals:   SETTING_SOURCE (written), the named variable
# Arguments: name value source
settings_default() {
  local name="$1" value="$2" source="$3"
  if [[ -n "${!name:-}" ]]; then
    [[ -n "${SETTING_SOURCE[${name}]:-}" ]] || SETTING_SOURCE["${name}"]=user
    export "${name?}"
    return 0
  fi
  printf -v "${name}" '%s' "${value}"
  export "${name?}"
  SETTING_SOURCE["${name}"]="${source}"
}

# Record a source for listed variables that another function has just set
# (e.g. gpu_apply_env_defaults). Variables already attributed are left alone.
# Globals:   SETTING_SOURCE (written)
# Arguments: source variable names...
settings_attribute() {
  local source="$1" name
  shift
  for name in "$@"; do
    [[ -n "${!name:-}" && -z "${SETTING_SOURCE[${name}]:-}" ]] && SETTING_SOURCE["${name}"]="${source}"
  done
  return 0
}

# Print the source recorded for a variable ("unset" when it has no value).
# Arguments: name
# Outputs:   the source on stdout
settings_source_of() {
  local name="$1"
  if [[ -z "${!name:-}" ]]; then
    printf 'unset'
  else
    printf '%s' "${SETTING_SOURCE[${name}]:-image}"
  fi
}

# Print one line per variable: NAME=value (source). Secrets print as ***: names holding
# KEY, PASSWORD or SECRET, or ending in TOKEN (MAX_NUM_BATCHED_TOKENS is a number).
# A value set without a recorded source came with the image.
# Arguments: variable names...
# Outputs:   the table on stdout
settings_explain() {
  local name value source
  for name in "$@"; do
    value="${!name:-}"
    source="$(settings_source_of "${name}")"
    case "${name}" in
      *KEY* | *TOKEN | *PASSWORD* | *SECRET*) [[ -n "${value}" ]] && value='***' ;;
    esac
    printf '%-28s %-44s (%s)\n' "${name}" "${value:-<unset>}" "${source}"
  done
}
