# shellcheck shell=bash
# Effective runtime settings and where each one came from, on the shell's side.
#
# The bootstrap decides settings in two places: the shell's GPU and CPU presets go through
# settings_default, which never overrides a value the container was given and records the
# source of the value it keeps ("gpu preset", "cpu preset"); everything else is src/config's
# (settings_resolve: "default", "derived", "deploy mode", "model config", "engine config" …).
# A value given to the container is "user", or "image" when the Dockerfile baked it in
# (image.env). `main.sh --explain` prints them all (settings_explain → src/config/explain.py).
#
# A library: functions only, safe under `set -u`; sourcing it again keeps what
# was recorded.

# shellcheck source=docker/common/scripts/logs.sh
source "${BASH_SOURCE[0]%/*}/logs.sh"
# shellcheck source=docker/common/scripts/util.sh
source "${BASH_SOURCE[0]%/*}/util.sh"

declare -gA SETTING_SOURCE 2>/dev/null || true # an older bash without -g: the array is made on first use

# Mark every exported variable that already has a value as the container's own ("user":
# src/config/explain.py tells the image's values from the user's by $APP_ROOT/image.env). Call
# it first, before any default is applied, so no preset or default claims a given value.
# Globals:   SETTING_SOURCE (written)
settings_record_user() {
  local name
  for name in $(compgen -e); do
    [[ -n "${!name:-}" && -z "${SETTING_SOURCE[${name}]:-}" ]] && SETTING_SOURCE["${name}"]=user
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

# Ask src/config for the settings it resolves for the shell (defaults, derived values, the
# checks that tie them: src/config/bootstrap.py) and export each with its source. The values
# are read as NUL-separated fields and assigned, never evaluated.
# Globals:   APP_ROOT, PYTHONPATH (read); SETTING_SOURCE and the resolved variables (set)
# Arguments: stack (vllm, trt, tool), [--download] (for main.sh --download-models)
# Outputs:   src/config's one line per invalid value, on stderr
# Returns:   1 when a value is not valid or python3 cannot answer
settings_resolve() {
  local name source value status=0
  while IFS= read -r -d '' name && IFS= read -r -d '' source && IFS= read -r -d '' value; do
    [[ "${name}" =~ ^[A-Z][A-Z0-9_]*$ ]] || continue # src/config prints names only; never an index
    printf -v "${name}" '%s' "${value}"
    export "${name?}"
    [[ "${source}" == user && -n "${SETTING_SOURCE[${name}]:-}" ]] || SETTING_SOURCE["${name}"]="${source}"
  done < <(util_run_python 30 src.config --stack "$@")
  wait "$!" || status=$?
  ((status == 0)) && return 0
  ((status == 1)) || log_err "[config]" "python3 -m src.config --stack $* failed with status ${status} (127: no python3; 124: no answer within 30 s)"
  return 1
}

# Check that settings the bootstrap resolves (src/config: defined, defaulted and checked
# there, exported by settings_resolve) have values; the scripts that read them define no
# default of their own.
# Arguments: log prefix, variable names…
# Outputs:   an error naming the first one that is unset
# Returns:   1 when one is unset
settings_require() {
  local prefix="$1" name
  shift
  for name in "$@"; do
    [[ -z "${!name:-}" ]] || continue
    log_err "${prefix}" "${name} is not set; the bootstrap resolves it (python3 -m src.config, see docker/common/README.md), or set it yourself"
    return 1
  done
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

# Print `main.sh --explain`: every setting of the stack with its value and source, from
# src/config/explain.py, which gets the sources recorded here (a value without one was given
# to the container: image or user).
# Globals:   SETTING_SOURCE, APP_ROOT, PYTHONPATH (read)
# Arguments: stack
# Outputs:   the table on stdout
# Returns:   python3's status
settings_explain() {
  local name sources=()
  for name in "${!SETTING_SOURCE[@]}"; do
    [[ "${SETTING_SOURCE[${name}]}" == user ]] || sources+=(--source "${name}=${SETTING_SOURCE[${name}]}")
  done
  util_run_python 30 src.config --stack "$1" --explain "${sources[@]}"
}
