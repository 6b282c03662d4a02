#!/usr/bin/env bash
# Usage:   warmup.sh [--help] [server_pid]
# Summary: Wait until the server answers WARMUP_URL with a 2xx status, then log
#          how long it took. The first checks come 0.1 s apart; the pause grows
#          to a tenth of the time waited so far, never more than 0.4 s, so the
#          server is seen healthy within 0.5 s however long it takes to start.
#          WARMUP_WAIT_INTERVAL, when set, is the longest pause instead (5: fewer
#          checks, seen up to ~5 s late). Given the server's PID (argument, or
#          WARMUP_SERVER_PID) it checks every 0.1 s, pauses included, that the
#          process still runs, and stops when it is gone. Uses curl (every
#          image installs it).
#
# Environment:
#   WARMUP_URL               URL to poll (default http://<HOST, 0.0.0.0 as 127.0.0.1>:${PORT}/healthz)
#   WARMUP_MAX_WAIT          seconds of wall-clock time before giving up
#   WARMUP_WAIT_INTERVAL     longest pause between checks, seconds (unset: 0.4)
#   WARMUP_REQUEST_TIMEOUT   time limit of one check, seconds
#   The bootstrap defines, defaults, checks and exports them (src/config: timers.py,
#   shell.py); WARMUP_MAX_WAIT and WARMUP_REQUEST_TIMEOUT must be set.
#   WARMUP_SERVER_PID        PID of the server (the argument wins)
#
# Exit status: 0 healthy, 1 timed out, 2 server gone, 64 bad configuration,
#              127 curl is not installed.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# shellcheck source=docker/common/scripts/server.sh
source "${SCRIPT_DIR}/server.sh" # server_health_url, and logs.sh and util.sh

readonly PREFIX="[warmup]"
readonly FIRST_PAUSE_US=100000       # the first pauses: 0.1 s
readonly PAUSE_SHARE=10              # later pauses: the time waited so far / 10
readonly DEFAULT_MAX_PAUSE_US=400000 # unset WARMUP_WAIT_INTERVAL: 0.4 s, so never 0.5 s late
readonly ALIVE_EVERY_US=100000       # how often a pause checks that the server runs
readonly PROGRESS_EVERY_US=30000000
readonly MIN_REQUEST_US=250000 # a check at the deadline still gets this long

# Print the Usage/Summary block at the top of this file.
usage() {
  log_usage "${BASH_SOURCE[0]}"
}

# Read the wall clock.
# Globals:   NOW_US (set: microseconds since the epoch)
now_us() {
  local t="${EPOCHREALTIME/[.,]/}"
  NOW_US=$((10#${t}))
}

# Format microseconds as seconds with three decimals.
# Arguments: microseconds
# Outputs:   e.g. 2.134
fmt_s() {
  printf '%d.%03d' $(($1 / 1000000)) $(($1 % 1000000 / 1000))
}

# Parse a non-negative number of seconds (e.g. 5, 0.25) from a variable.
# Globals:   PARSED_US (set: the value in microseconds)
# Arguments: variable name, value
# Outputs:   an error naming the variable and its value when it is not valid
# Returns:   0 when valid, 1 otherwise
parse_seconds() {
  local name="$1" value="$2"
  if [[ ! "${value}" =~ ^([0-9]{1,6})(\.([0-9]{1,6})[0-9]*)?$ ]]; then
    log_err "${PREFIX}" "${name} '${value}' is not valid; use a non-negative number of seconds (e.g. 5 or 0.5)"
    return 1
  fi
  local frac="${BASH_REMATCH[3]}000000"
  PARSED_US=$((10#${BASH_REMATCH[1]} * 1000000 + 10#${frac:0:6}))
}

# Check the configuration and turn it into globals.
# Globals:   WARMUP_URL, WARMUP_MAX_WAIT, WARMUP_WAIT_INTERVAL, WARMUP_REQUEST_TIMEOUT,
#            WARMUP_SERVER_PID, PORT (read); URL, MAX_WAIT_US, MAX_PAUSE_US,
#            REQUEST_US, SERVER_PID (set)
# Arguments: [server_pid]
# Returns:   1 with a message naming the variable when a value is not valid
read_config() {
  URL="$(server_health_url)" || return 1
  if [[ ! "${URL}" =~ ^https?://[^[:space:]]+$ ]]; then
    log_err "${PREFIX}" "WARMUP_URL '$(util_printable "${URL}")' is not valid; use an http:// or https:// URL (default http://127.0.0.1:\${PORT}/healthz)"
    return 1
  fi
  settings_require "${PREFIX}" WARMUP_MAX_WAIT WARMUP_REQUEST_TIMEOUT || return 1
  parse_seconds WARMUP_MAX_WAIT "${WARMUP_MAX_WAIT}" || return 1
  MAX_WAIT_US="${PARSED_US}"
  MAX_PAUSE_US="${DEFAULT_MAX_PAUSE_US}"
  if [[ -n "${WARMUP_WAIT_INTERVAL:-}" ]]; then
    parse_seconds WARMUP_WAIT_INTERVAL "${WARMUP_WAIT_INTERVAL}" || return 1
    MAX_PAUSE_US="${PARSED_US}"
  fi
  parse_seconds WARMUP_REQUEST_TIMEOUT "${WARMUP_REQUEST_TIMEOUT}" || return 1
  REQUEST_US="${PARSED_US}"
  SERVER_PID="${1:-${WARMUP_SERVER_PID:-}}"
  if [[ -n "${SERVER_PID}" && ! "${SERVER_PID}" =~ ^[1-9][0-9]*$ ]]; then
    log_err "${PREFIX}" "server PID '${SERVER_PID}' (argument or WARMUP_SERVER_PID) is not valid; use a process ID such as 42"
    return 1
  fi
}

# Check that curl, which sends the checks, is installed.
# Returns:   1 with a message when it is not
require_curl() {
  command -v curl >/dev/null && return 0
  log_err "${PREFIX}" "curl is not installed; install it in the image (every stack's Dockerfile does) to check the server's health"
  return 1
}

# Send one request to URL within a time limit. The request runs as a child
# that stop_child can end, so a signal never leaves it behind.
# Globals:   URL (read); CHILD_PID (set while it runs); HTTP_STATUS (set:
#            the status, 000 when no answer)
# Arguments: time limit in microseconds
# Returns:   0 when the status is 2xx
probe_once() {
  local limit fd
  limit="$(fmt_s "$1")"
  exec {fd}< <(exec curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time "${limit}" -- "${URL}")
  CHILD_PID=$!
  wait "${CHILD_PID}" || true # a failed request is an ordinary "not yet"; its output says 000
  CHILD_PID=""
  HTTP_STATUS=""
  read -r -u "${fd}" HTTP_STATUS || true # curl ends its output without a newline
  exec {fd}<&-
  HTTP_STATUS="${HTTP_STATUS:-000}"
  [[ "${HTTP_STATUS}" =~ ^2[0-9][0-9]$ ]]
}

# Pause, checking every ALIVE_EVERY_US that the server still runs. The pause is
# `read -t` on a pipe nobody writes to: no process to start or to leave behind,
# and a trapped signal ends it at once.
# Globals:   PAUSE_FD (read; opened by main)
# Arguments: microseconds
# Returns:   1 as soon as the server is gone, 0 after the full pause
pause_for() {
  local end slice
  now_us
  end=$((NOW_US + $1))
  while ((NOW_US < end)); do
    slice=$((end - NOW_US))
    ((slice < ALIVE_EVERY_US)) || slice="${ALIVE_EVERY_US}"
    read -r -t "$(fmt_s "${slice}")" -u "${PAUSE_FD}" || true # the time-out is the pause
    server_alive || return 1
    now_us
  done
}

# On SIGTERM or SIGINT: end the running request, then exit 128+N.
# Globals:   CHILD_PID (read)
# Arguments: exit status
stop_child() {
  [[ -z "${CHILD_PID:-}" ]] || kill -TERM "${CHILD_PID}" 2>/dev/null || true # it may have just ended
  exit "$1"
}

# Whether the server process still runs (a zombie counts as gone).
# Globals:   SERVER_PID (read; empty: always running)
# Returns:   0 when it runs or no PID was given
server_alive() {
  [[ -z "${SERVER_PID}" ]] || ! util_pid_gone "${SERVER_PID}"
}

main() {
  case "${1:-}" in
    -h | --help) usage; return 0 ;;
  esac
  read_config "$@" || return 64
  require_curl || return 127
  trap 'stop_child 143' TERM
  trap 'stop_child 130' INT
  exec {PAUSE_FD}<> <(:) # a pipe that stays empty: pause_for waits on it

  local start checks=0 elapsed pause limit next_progress="${PROGRESS_EVERY_US}" answer="no answer"
  now_us
  start="${NOW_US}"
  log_info "${PREFIX}" "waiting for ${URL} (at most ${WARMUP_MAX_WAIT} s${SERVER_PID:+, server PID ${SERVER_PID}})"
  while true; do
    if ! server_alive; then
      now_us
      log_err "${PREFIX}" "the server (PID ${SERVER_PID}) exited after $(fmt_s $((NOW_US - start))) s, before it was healthy; see its log above"
      return 2
    fi
    now_us
    limit=$((start + MAX_WAIT_US - NOW_US))
    ((limit < REQUEST_US)) || limit="${REQUEST_US}"
    ((limit > MIN_REQUEST_US)) || limit="${MIN_REQUEST_US}"
    checks=$((checks + 1))
    if probe_once "${limit}"; then
      now_us
      log_success "${PREFIX}" "${URL} healthy after $(fmt_s $((NOW_US - start))) s (${checks} checks; ready at epoch ${NOW_US:0:-6}.${NOW_US: -6})"
      return 0
    fi
    now_us
    elapsed=$((NOW_US - start))
    log_debug "${PREFIX}" "check ${checks}: status ${HTTP_STATUS} after $(fmt_s "${elapsed}") s"
    [[ "${HTTP_STATUS}" == 000 ]] || answer="last status ${HTTP_STATUS}"
    if ((elapsed >= MAX_WAIT_US)); then
      log_err "${PREFIX}" "${URL} not healthy after WARMUP_MAX_WAIT=${WARMUP_MAX_WAIT} s (${checks} checks, ${answer}); raise WARMUP_MAX_WAIT or read the server log"
      return 1
    fi
    if ((elapsed >= next_progress)); then
      log_info "${PREFIX}" "still waiting after $(fmt_s "${elapsed}") s (${answer})"
      next_progress=$((next_progress + PROGRESS_EVERY_US))
    fi
    pause=$((elapsed / PAUSE_SHARE))
    ((pause > FIRST_PAUSE_US)) || pause="${FIRST_PAUSE_US}"
    ((pause < MAX_PAUSE_US)) || pause="${MAX_PAUSE_US}"
    ((pause < MAX_WAIT_US - elapsed)) || pause=$((MAX_WAIT_US - elapsed))
    pause_for "${pause}" || true # the server is gone: the check at the top reports it
  done
}

main "$@"
