# shellcheck shell=bash
# Helpers for bats suites that run the test apps of tests/apps/probe.py with a
# real uvicorn. Load after helpers/common:   load '../apps/harness'
# and call harness_setup from setup(), harness_teardown from teardown().
#
# harness_setup gives each test:
#   PROBE_DIR   where the apps write their records (pid, shutdown, switch_at, ...)
#   PORT        a free TCP port on 127.0.0.1 (asked from the OS; also in HARNESS_PORT)
#   HOST        127.0.0.1
#   APP_ROOT    the repository root, so SERVER_APP=tests.apps.probe:<app> imports
# scripts/bench/startup.sh sources it too, for harness_free_port.

# shellcheck source=docker/common/scripts/util.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../docker/common/scripts/util.sh" # util_pid_gone

# Make the record directory and pick a free port.
harness_setup() {
  export PROBE_DIR="${BATS_TEST_TMPDIR}/probe records"
  mkdir -p "${PROBE_DIR}"
  PORT="$(harness_free_port "${VENV_PYTHON}")"
  export PORT HOST=127.0.0.1 APP_ROOT="${PROJECT_ROOT}"
  HARNESS_PORT="${PORT}"
  HARNESS_PIDS=()
}

# Print a TCP port on 127.0.0.1 that is free now (the OS picks it).
# Arguments: python (a Python 3 interpreter)
harness_free_port() {
  "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start a test app under uvicorn in the background, its log in $PROBE_DIR/server.log.
# Globals:   APP_PID (set)
# Arguments: app name (healthy, crashing, late, never, hanging)
harness_start_app() {
  "${PROJECT_ROOT}/.venv/bin/uvicorn" --app-dir "${PROJECT_ROOT}" "tests.apps.probe:$1" \
    --host 127.0.0.1 --port "${PORT}" >"${PROBE_DIR}/server.log" 2>&1 3>&- &
  APP_PID=$!
  harness_track "${APP_PID}"
}

# Remember a process this test started, so teardown can stop it if it is left.
# Arguments: pid...
harness_track() {
  HARNESS_PIDS+=("$@")
}

# Stop whatever this test started and is still running (TERM, then KILL), and
# every process still serving on this test's port.
harness_teardown() {
  local pid
  for pid in "${HARNESS_PIDS[@]}" $(harness_port_pids); do
    kill -TERM "${pid}" 2>/dev/null || continue
    wait_for 5 util_pid_gone "${pid}" || kill -KILL "${pid}" 2>/dev/null || true # already gone
  done
}

# Poll a command every 0.05 s until it succeeds or the deadline passes.
# Arguments: seconds, command...
# Returns:   0 when the command succeeded in time
wait_for() {
  local deadline=$((${EPOCHREALTIME/./} + ${1%.*} * 1000000))
  shift
  until "$@"; do
    ((${EPOCHREALTIME/./} < deadline)) || return 1
    sleep 0.05
  done
}

# Print the PIDs of processes whose command line holds "--port $PORT" or
# "warmup.sh <server pid>" for the server this test started.
# Globals:   HARNESS_PORT, PROBE_DIR (read)
harness_port_pids() {
  local server=""
  [[ -r "${PROBE_DIR}/pid" ]] && server="$(<"${PROBE_DIR}/pid")"
  # the patterns are built inside awk, so awk's own command line never matches them
  ps -eo pid=,args= | awk -v port="${HARNESS_PORT}" -v server="${server:-none}" \
    '$0 ~ ("--port " port "( |$)") || $0 ~ ("warmup.sh " server "( |$)") { print $1 }'
}

# Fail when any process of this test's server or probe is still running.
assert_nothing_left() {
  local left
  left="$(harness_port_pids)"
  if [[ -n "${left}" ]]; then
    ps -o pid,stat,args -p "${left//$'\n'/,}" >&2 || true # show them; ps fails if they just ended
    fail "processes left running: ${left//$'\n'/ }"
  fi
}

# Print the epoch seconds a record file holds.
# Arguments: record name
record() {
  cat "${PROBE_DIR}/$1"
}

# Print a - b for two decimal numbers of seconds.
# Arguments: a, b
seconds_between() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a - b }'
}

# Whether decimal number a is at most b.
# Arguments: a, b
at_most() {
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}
