# shellcheck shell=bash
# The container's main flow, shared by every stack's main.sh (PID 1):
#   --help → usage; bootstrap; --explain → print the effective settings and
#   where each came from; --download-models → fetch the configured models into
#   their (mounted) directories; a command given as arguments → exec it;
#   otherwise require an API key and start the server (server.sh or the
#   stack's start script).
#
# A library: functions only, safe under `set -u`. Needs server.sh (and logs.sh).

# shellcheck source=docker/common/scripts/server.sh
source "${BASH_SOURCE[0]%/*}/server.sh"
# shellcheck source=docker/common/scripts/settings.sh
source "${BASH_SOURCE[0]%/*}/settings.sh"

# Run a container: the whole of a stack's main.sh after it has defined its usage.
# Globals:   APP_ROOT (exported: util_app_root); TEXT_API_KEY, TEXT_API_KEY_FILE
#            (checked); whatever the stack's bootstrap.sh sets
# Arguments: stack (e.g. tool), stack_script_dir, usage_fn, start_mode
#            (direct_common | script), [start_target], [-- container arguments…]
#            Container arguments: -h/--help, --explain (bootstrap, print every
#            setting of the stack with its source, src/config/explain.py), --download-models
#            (the deploy mode's part of the bootstrap, then lifecycle_download_models),
#            or a command to run instead of the server (after bootstrap, e.g. bash);
#            none: start the server.
# Outputs:   the usage text on stdout for --help; logs on stderr
# Returns:   0 after --help; 1 on a bad argument, a failed bootstrap or a bad API
#            key; 127 when the command is not found; else the server's status
#            (in script mode, for a command and for the download, the process
#            replaces this shell)
run_docker_main() {
  if (($# < 4)); then
    log_err "[lifecycle]" "usage: run_docker_main <stack> <stack_script_dir> <usage_fn> <start_mode> [start_target] [-- args...]"
    return 1
  fi
  local stack="$1" dir="$2" usage_fn="$3" mode="$4" target=""
  shift 4
  if (($# > 0)) && [[ "$1" != -- ]]; then
    target="$1"
    shift
  fi
  if (($# > 0)) && [[ "$1" == -- ]]; then
    shift
  elif (($# > 0)); then
    log_err "[lifecycle]" "unexpected argument '$1' after the start target; container arguments follow '--'"
    return 1
  fi
  local prefix="[${stack}]"
  _lifecycle_check_call "${prefix}" "${dir}" "${usage_fn}" "${mode}" || return 1

  # What the container arguments ask for. A new main.sh option is one more case
  # here and one more in the case below.
  local action=serve
  case "${1:-}" in
    "") ;;
    -h | --help) action=help ;;
    --explain) action=explain ;;
    --download-models) action=download ;;
    -*)
      log_err "${prefix}" "unknown option '$1'; main.sh takes --help, --explain, --download-models, or a command to run instead of the server (e.g. bash)"
      return 1
      ;;
    *) action="command" ;;
  esac
  if [[ "${action}" == help ]]; then
    "${usage_fn}"
    return 0
  fi

  APP_ROOT="$(util_app_root)"
  export APP_ROOT
  # The download needs only the deploy mode: the rest of the bootstrap checks the models it fetches.
  # shellcheck disable=SC2034 # read by startup_bootstrap, which the stack's bootstrap.sh calls
  if [[ "${action}" == download ]]; then STARTUP_FOR_DOWNLOAD=1; fi
  lifecycle_bootstrap "${prefix}" "${dir}" || return 1
  case "${action}" in
    download)
      lifecycle_download_models "${prefix}" "${stack}"
      ;;
    explain)
      settings_explain "${stack}"
      return
      ;;
    command)
      if ! command -v "$1" >/dev/null; then
        log_err "${prefix}" "command '$1' not found (PATH=${PATH}); give a program installed in the image, e.g. bash"
        return 127
      fi
      log_info "${prefix}" "running '$1' instead of the server"
      exec "$@"
      ;;
    serve)
      lifecycle_require_api_key "${prefix}" || return 1
      lifecycle_start "${prefix}" "${dir}" "${mode}" "${target}"
      ;;
  esac
}

# Download the models the deploy mode serves into their directories (CHAT_MODEL_PATH,
# TOOL_MODEL_PATH, TRT_ENGINE_DIR: a mounted volume) with the build's own download steps
# (common/download/models.py): same revisions, same manifest; a directory whose manifest is
# current is left as it is, an interrupted download resumes. No API key is needed; the token
# comes from HF_TOKEN or the file HF_TOKEN_FILE. The Hub client's own timeouts bound every request.
# Globals:   APP_ROOT, DOWNLOAD_PYTHON (default python3: the Python with huggingface_hub 2.x)
# Arguments: log_prefix, stack
# Returns:   127 when DOWNLOAD_PYTHON is no program; otherwise the download replaces this
#            shell (its status: 0, or 1 with one line)
lifecycle_download_models() {
  local prefix="$1" stack="$2" python="${DOWNLOAD_PYTHON:-python3}"
  if ! command -v "${python}" >/dev/null; then
    log_err "${prefix}" "DOWNLOAD_PYTHON '${python}' is not a program in this image; unset it (python3 on PATH) or name a Python with huggingface_hub 2.x"
    return 127
  fi
  log_info "${prefix}" "downloading the models of DEPLOY_MODE=${DEPLOY_MODE:-} from ${HF_ENDPOINT:-the Hub}"
  exec "${python}" "${APP_ROOT}/common/download/models.py" "${stack}"
}

# Source the stack's bootstrap.sh into this shell (it defines stack_bootstrap and sources
# the libraries it needs; nothing else runs then) and call stack_bootstrap.
# Arguments: log_prefix, stack_script_dir
# Returns:   1 with a message when it is missing, defines no stack_bootstrap, or the
#            bootstrap returns non-zero
lifecycle_bootstrap() {
  local prefix="$1" bootstrap="$2/bootstrap.sh" status=0
  if [[ ! -f "${bootstrap}" ]]; then
    log_err "${prefix}" "bootstrap script '${bootstrap}' not found; every stack needs scripts/bootstrap.sh"
    return 1
  fi
  # shellcheck source=/dev/null # the stack's own bootstrap.sh
  source "${bootstrap}" || status=$?
  if ((status == 0)) && ! declare -F stack_bootstrap >/dev/null; then
    log_err "${prefix}" "bootstrap '${bootstrap}' defines no stack_bootstrap function; every stack's bootstrap.sh defines one"
    return 1
  fi
  ((status != 0)) || stack_bootstrap || status=$?
  if ((status != 0)); then
    log_err "${prefix}" "bootstrap '${bootstrap}' failed with status ${status}; see the message above"
    return 1
  fi
}

# Require an API key: TEXT_API_KEY, or TEXT_API_KEY_FILE naming a readable file
# (the Docker/Kubernetes secrets convention). Keys are separated by commas or
# new lines. The key itself is never printed, and stays where it was given.
# Globals:   TEXT_API_KEY, TEXT_API_KEY_FILE (read)
# Arguments: log_prefix
# Returns:   1 with a message saying what is wrong
lifecycle_require_api_key() {
  local prefix="$1" key="${TEXT_API_KEY:-}" file="${TEXT_API_KEY_FILE:-}"
  local blank='^[[:space:],]*$'
  if [[ -n "${file}" ]]; then
    if [[ ! "${key}" =~ ${blank} ]]; then
      log_err "${prefix}" "both TEXT_API_KEY and TEXT_API_KEY_FILE are set; set only one"
      return 1
    fi
    if [[ ! -f "${file}" || ! -r "${file}" ]]; then
      log_err "${prefix}" "TEXT_API_KEY_FILE '${file}' is not a readable file; mount the secret there or fix the path"
      return 1
    fi
    if ! grep -q '[^[:space:],]' "${file}"; then
      log_err "${prefix}" "TEXT_API_KEY_FILE '${file}' holds no key (it is empty or whitespace only)"
      return 1
    fi
    return 0
  fi
  if [[ -z "${TEXT_API_KEY+set}" ]]; then
    log_err "${prefix}" "no API key: set TEXT_API_KEY, or TEXT_API_KEY_FILE to a file holding it (e.g. a Docker or Kubernetes secret)"
    return 1
  fi
  if [[ "${key}" =~ ${blank} ]]; then
    log_err "${prefix}" "TEXT_API_KEY is set but empty or whitespace only; give a key, or use TEXT_API_KEY_FILE"
    return 1
  fi
}

# Start the server the way the stack asks.
# Arguments: log_prefix, stack_script_dir, start_mode, [start_target]
# Returns:   the server's status (direct_common); script mode replaces this
#            shell, or returns 1 when the script is missing or not executable
lifecycle_start() {
  local prefix="$1" dir="$2" mode="$3" target="${4:-}"
  if [[ "${mode}" == direct_common ]]; then
    start_server_with_warmup "${prefix}" "${BASH_SOURCE[0]%/*}/warmup.sh" "${APP_ROOT:-}"
    return
  fi
  target="${target:-${dir}/start_server.sh}"
  if [[ ! -f "${target}" || ! -x "${target}" ]]; then
    local entry present=""
    for entry in "$(dirname "${target}")"/*; do
      [[ -e "${entry}" ]] || continue # an empty directory leaves the pattern itself
      present+=" ${entry##*/}"
      [[ ! -f "${entry}" || ! -x "${entry}" ]] || present+="*"
    done
    log_err "${prefix}" "start script '${target}' is missing or not executable; its directory holds (* executable):${present:- nothing}"
    return 1
  fi
  log_info "${prefix}" "starting ${target}"
  exec "${target}"
}

# Check the arguments the stack's main.sh passed.
# Arguments: log_prefix, stack_script_dir, usage_fn, start_mode
# Returns:   1 with a message naming the bad argument
_lifecycle_check_call() {
  local prefix="$1" dir="$2" usage_fn="$3" mode="$4"
  case "${mode}" in
    direct_common | script) ;;
    *)
      log_err "${prefix}" "start mode '${mode}' is not valid; use direct_common (the shared server.sh) or script (exec the stack's start script)"
      return 1
      ;;
  esac
  if [[ ! -d "${dir}" ]]; then
    log_err "${prefix}" "stack script directory '${dir}' is not a directory"
    return 1
  fi
  if ! declare -F "${usage_fn}" >/dev/null; then
    log_err "${prefix}" "usage function '${usage_fn}' is not defined; define it in main.sh before calling run_docker_main"
    return 1
  fi
}
