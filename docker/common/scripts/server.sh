# shellcheck shell=bash
# Start the ASGI server (uvicorn) and its warmup probe, then supervise both:
# forward stop signals to the server (SIGKILL after SERVER_STOP_TIMEOUT), stop the
# probe when the server ends, and return the server's status.
#
# Configuration: SERVER_APP, HOST, PORT, UVICORN_WORKERS, GATEWAY_WORKERS, APP_ROOT,
# SERVER_STOP_TIMEOUT, WARMUP_FAIL_EXIT, PROMETHEUS_MULTIPROC_DIR (and the WARMUP_*
# variables warmup.sh reads). All but APP_ROOT and PROMETHEUS_MULTIPROC_DIR come from the
# bootstrap, which defines, defaults and checks them in src/config (shell.py, timers.py)
# and exports them; these functions need them set.
#
# A library: functions only, safe under `set -u`. Needs logs.sh, util.sh and settings.sh.

# shellcheck source=docker/common/scripts/logs.sh
source "${BASH_SOURCE[0]%/*}/logs.sh"
# shellcheck source=docker/common/scripts/util.sh
source "${BASH_SOURCE[0]%/*}/util.sh"
# shellcheck source=docker/common/scripts/settings.sh
source "${BASH_SOURCE[0]%/*}/settings.sh" # settings_require

# Fill UVICORN_CMD with a working uvicorn launcher and the server options. The launcher is
# `uvicorn` when its script can start (_server_script_starts: no Python runs for the check),
# else `python -m uvicorn` or `python3 -m uvicorn`, the first Python that imports uvicorn.
# With GATEWAY_WORKERS above 1 it is the gateway's supervisor (`<python> -m src.supervisor`
# with the Python of uvicorn's script, else the first that imports uvicorn: the chat engine
# once, then uvicorn with these options and --workers GATEWAY_WORKERS), else uvicorn with
# UVICORN_WORKERS workers.
# Globals:   SERVER_APP, HOST, PORT, UVICORN_WORKERS, GATEWAY_WORKERS (read; required),
#            APP_ROOT (read); UVICORN_CMD (set)
# Arguments: [root_dir] the directory the app is imported from (default: util_app_root)
# Returns:   1 when a setting is unset, 127 when no launcher works (each with a message)
resolve_uvicorn_cmd() {
  settings_require "[server]" SERVER_APP HOST PORT UVICORN_WORKERS GATEWAY_WORKERS || return 1
  local workers="${UVICORN_WORKERS}" gateway=0
  if ((10#${GATEWAY_WORKERS} > 1)); then
    workers="${GATEWAY_WORKERS}"
    gateway=1
  fi
  local root="${1:-}"
  [[ -n "${root}" ]] || root="$(util_app_root)"
  if [[ ! -d "${root}" ]]; then
    log_err "[server]" "application root '${root}' is not a directory; set APP_ROOT to the directory that holds src/"
    return 1
  fi
  local launcher=() python interpreter
  if _server_script_starts uvicorn interpreter; then
    if ((!gateway)); then
      launcher=(uvicorn)
    elif [[ "${interpreter##*/}" == python* ]]; then
      launcher=("${interpreter}" -m uvicorn)
    fi
  fi
  if ((${#launcher[@]} == 0)); then
    for python in python python3; do
      if command -v "${python}" >/dev/null && timeout 30 "${python}" -m uvicorn --version >/dev/null 2>&1; then
        launcher=("${python}" -m uvicorn)
        break
      fi
    done
  fi
  if ((${#launcher[@]} == 0)); then
    log_err "[server]" "uvicorn is missing from the image: none of 'uvicorn', 'python -m uvicorn', 'python3 -m uvicorn' works with PATH=${PATH}; install uvicorn into the image's Python environment"
    return 127
  fi
  # --http: uvicorn's httptools protocol with limits on request headers (src/protocol.py);
  # --log-config: uvicorn's lines in the layer's format (pyhelpers/log_setup.py: LOG_LEVEL,
  # LOG_FORMAT).
  # With GATEWAY_WORKERS above 1: the supervisor, which runs `<its python> -m uvicorn <options>`.
  ((!gateway)) || launcher=("${launcher[0]}" -m src.supervisor)
  UVICORN_CMD=("${launcher[@]}" "${SERVER_APP}" --host "${HOST}" --port "${PORT}"
    --workers "${workers}" --app-dir "${root}" --http src.protocol:BoundedHttp
    --log-config "${root}/pyhelpers/uvicorn_log.json")
}

# Whether a program on PATH can start, and its interpreter: an executable file whose "#!"
# interpreter, if it has one, is an executable file too. A console script of a virtual
# environment that moved or lost its Python fails this. The check runs no process (starting
# uvicorn's Python to ask it would add a tenth of a second to every container start).
# Arguments: program name, name of the variable that gets the interpreter ('' for none)
# Returns:   0 when it can start, 1 otherwise
_server_script_starts() {
  local -n _server_interpreter="$2"
  local path line
  _server_interpreter=""
  path="$(type -P "$1")" || return 1
  IFS= read -r line <"${path}" 2>/dev/null || return 0 # empty or unreadable: the kernel decides
  [[ "${line}" == '#!'* ]] || return 0                  # a binary, or no interpreter line
  read -r _server_interpreter _ <<<"${line#'#!'}"
  [[ -f "${_server_interpreter}" && -x "${_server_interpreter}" ]]
}

# The health URL warmup.sh polls: WARMUP_URL, else /healthz on the local side
# of HOST and PORT. The one place that builds it (server.sh and warmup.sh).
# Globals:   WARMUP_URL, HOST, PORT (read)
# Outputs:   the URL on stdout; an error naming HOST or PORT when one is unset
# Returns:   1 when HOST or PORT is unset (and WARMUP_URL is unset)
server_health_url() {
  if [[ -n "${WARMUP_URL:-}" ]]; then
    printf '%s\n' "${WARMUP_URL}"
    return 0
  fi
  settings_require "[server]" HOST PORT || return 1
  local address="${HOST}"
  case "${address}" in
    0.0.0.0) address=127.0.0.1 ;;
    ::) address="[::1]" ;;
    *:*) address="[${address}]" ;;
  esac
  printf 'http://%s:%s/healthz\n' "${address}" "${PORT}"
}

# Start the server and the warmup probe in the background, forward SIGTERM and
# SIGINT to the server (SIGQUIT as SIGTERM: uvicorn's graceful stop), and wait.
# When warmup gives up and WARMUP_FAIL_EXIT=1 the server is stopped. A server
# still running SERVER_STOP_TIMEOUT seconds after the first stop signal gets
# SIGKILL. When the server ends, the probe is stopped and reaped, and the traps
# are removed.
# Globals:   WARMUP_FAIL_EXIT, SERVER_STOP_TIMEOUT (read); SERVER_PID, WARMUP_PID
#            (set); UVICORN_CMD
# Arguments: log_prefix (e.g. "[tool]"), warmup_script, [root_dir]
# Returns:   the server's status (143 after SIGTERM, 137 after the SIGKILL); 1 when
#            warmup gave up with WARMUP_FAIL_EXIT=1 and the server still ended
#            with 0; 1 or 127 when nothing could start (SERVER_STOP_TIMEOUT unset: 1)
start_server_with_warmup() {
  if (($# < 2)); then
    log_err "[server]" "usage: start_server_with_warmup <log_prefix> <warmup_script> [root_dir]"
    return 1
  fi
  local prefix="$1" warmup="$2" url
  if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501)); then
    log_err "${prefix}" "bash ${BASH_VERSION} is too old to supervise the server; the image needs bash 5.1 or newer (for wait -n -p)"
    return 1
  fi
  if [[ ! -f "${warmup}" || ! -x "${warmup}" ]]; then
    log_err "${prefix}" "warmup script '${warmup}' is not an executable file"
    return 1
  fi
  settings_require "${prefix}" SERVER_STOP_TIMEOUT || return 1
  resolve_uvicorn_cmd "${3:-}" || return
  url="$(server_health_url)" || return 1
  _server_metrics_dir "${prefix}" || return 1

  _SERVER_SIGNAL=""
  _SERVER_WATCHDOG_PID=""
  SERVER_PID=""
  trap '_server_forward TERM' TERM
  trap '_server_forward INT' INT
  trap '_server_forward QUIT' QUIT
  log_info "${prefix}" "starting the server: ${UVICORN_CMD[*]}"
  "${UVICORN_CMD[@]}" &
  SERVER_PID=$!
  [[ -z "${_SERVER_SIGNAL}" ]] || _server_forward "${_SERVER_SIGNAL}" # a signal came before the server did
  WARMUP_URL="${url}" "${warmup}" "${SERVER_PID}" &
  WARMUP_PID=$!

  local pending finished status server_status="" gave_up=0
  while [[ -z "${server_status}" ]]; do
    pending=("${SERVER_PID}" ${WARMUP_PID:+"${WARMUP_PID}"} ${_SERVER_WATCHDOG_PID:+"${_SERVER_WATCHDOG_PID}"})
    finished=""
    status=0
    wait -n -p finished "${pending[@]}" || status=$?
    if [[ -z "${finished:-}" ]]; then
      continue # a trapped signal interrupted wait; the trap has forwarded it
    elif [[ "${finished}" == "${SERVER_PID}" ]]; then
      server_status="${status}"
    elif [[ "${finished}" == "${_SERVER_WATCHDOG_PID}" ]]; then
      _SERVER_WATCHDOG_PID=""
      log_err "${prefix}" "the server (PID ${SERVER_PID}) did not stop within SERVER_STOP_TIMEOUT=${SERVER_STOP_TIMEOUT} s: sending SIGKILL"
      kill -KILL "${SERVER_PID}" 2>/dev/null || true # it may have ended just now: wait says how
    else
      WARMUP_PID=""
      _server_after_warmup "${prefix}" "${status}" || gave_up=1
    fi
  done

  local pid
  for pid in ${WARMUP_PID:+"${WARMUP_PID}"} ${_SERVER_WATCHDOG_PID:+"${_SERVER_WATCHDOG_PID}"}; do
    kill -TERM "${pid}" 2>/dev/null || true # it may be ending on its own
    wait "${pid}" 2>/dev/null || true       # reaped; its status no longer matters
  done
  WARMUP_PID=""
  _SERVER_WATCHDOG_PID=""
  trap - TERM INT QUIT
  if ((server_status == 0 && gave_up)); then
    server_status=1
  fi
  log_info "${prefix}" "the server exited with status ${server_status}"
  return "${server_status}"
}

# Act on the warmup probe's status: stop the server when it gave up and
# WARMUP_FAIL_EXIT=1, else only log.
# Globals:   SERVER_PID, WARMUP_FAIL_EXIT (read)
# Arguments: log_prefix, warmup status
# Returns:   1 when the server was stopped because warmup gave up
_server_after_warmup() {
  local prefix="$1" status="$2"
  case "${status}" in
    0 | 2) return 0 ;; # healthy, or the server is gone (its own exit is reported)
  esac
  if [[ "${WARMUP_FAIL_EXIT:-}" == 1 ]]; then
    log_err "${prefix}" "warmup failed (status ${status}) and WARMUP_FAIL_EXIT=1: stopping the server (PID ${SERVER_PID}) so the container exits"
    _server_stop TERM
    return 1
  fi
  log_warn "${prefix}" "warmup failed (status ${status}); the server keeps running (WARMUP_FAIL_EXIT=1 stops it instead)"
  return 0
}

# Give prometheus_client a directory for the values of several workers (src/metrics.py sums
# them for /metrics): PROMETHEUS_MULTIPROC_DIR when set, emptied of the *.db files a previous
# run left (they would count again), else, with UVICORN_WORKERS or GATEWAY_WORKERS above 1,
# a new one under TMPDIR. With one worker and the variable unset there is nothing to do.
# Globals:   UVICORN_WORKERS, GATEWAY_WORKERS, TMPDIR (read); PROMETHEUS_MULTIPROC_DIR (set,
#            exported)
# Arguments: log_prefix
# Returns:   1 with a message when the directory cannot be made or emptied
_server_metrics_dir() {
  local dir="${PROMETHEUS_MULTIPROC_DIR:-}"
  if [[ -z "${dir}" ]]; then
    ((10#${UVICORN_WORKERS} > 1 || 10#${GATEWAY_WORKERS} > 1)) || return 0
    dir="$(mktemp -d "${TMPDIR:-/tmp}/metrics.XXXXXX")" || {
      log_err "$1" "cannot make a directory for the metrics of several workers under ${TMPDIR:-/tmp}; set TMPDIR or PROMETHEUS_MULTIPROC_DIR to a writable directory"
      return 1
    }
  elif ! mkdir -p "${dir}" || ! find "${dir}" -maxdepth 1 -name '*.db' -type f -delete; then
    log_err "$1" "PROMETHEUS_MULTIPROC_DIR '$(util_printable "${dir}")' is not a writable directory; unset it (one is made under TMPDIR) or point it at one"
    return 1
  fi
  export PROMETHEUS_MULTIPROC_DIR="${dir}"
}

# Trap handler: send a signal to the server (QUIT as TERM, uvicorn's graceful
# stop), or remember it until the server runs.
# Globals:   SERVER_PID (read); _SERVER_SIGNAL (set when there is no server yet)
# Arguments: the signal received (TERM, INT or QUIT)
_server_forward() {
  if [[ -z "${SERVER_PID:-}" ]]; then
    _SERVER_SIGNAL="$1"
    return 0
  fi
  log_info "[server]" "SIG$1: stopping the server (PID ${SERVER_PID})"
  if [[ "$1" == QUIT ]]; then _server_stop TERM; else _server_stop "$1"; fi
}

# Send a stop signal to the server and, on the first one, start the watchdog:
# a `sleep SERVER_STOP_TIMEOUT` that start_server_with_warmup waits for beside the
# server; when it ends first, the server gets SIGKILL (status 137).
# Globals:   SERVER_PID, SERVER_STOP_TIMEOUT (read); _SERVER_WATCHDOG_PID (set)
# Arguments: signal name
_server_stop() {
  kill -s "$1" "${SERVER_PID}" 2>/dev/null || true # already gone: wait reports its status
  if [[ -z "${_SERVER_WATCHDOG_PID:-}" ]]; then
    sleep "${SERVER_STOP_TIMEOUT}" 3>&- &
    _SERVER_WATCHDOG_PID=$!
  fi
}
