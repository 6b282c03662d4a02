#!/usr/bin/env bats
# docker/common/scripts/server.sh against a real uvicorn serving tests/apps/probe.py
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031
# Scripts for `bash -c` take their values as arguments, so they are single-quoted:
# shellcheck disable=SC2016

load 'helpers/common'
load '../apps/harness'

setup() {
  common_setup
  harness_setup
  set -u
  # what the bootstrap resolves (src/config) and exports; HOST and PORT come from the harness
  export SERVER_APP=src.server:app UVICORN_WORKERS=1 GATEWAY_WORKERS=1 SERVER_STOP_TIMEOUT=60 WARMUP_MAX_WAIT=300 \
    WARMUP_REQUEST_TIMEOUT=2
  # shellcheck source=docker/common/scripts/server.sh
  source "${COMMON_SCRIPTS}/server.sh"
  # a warmup stand-in that records its calls, for tests where no server may start
  make_stub warmup
}

teardown() {
  harness_teardown
}

# Run start_server_with_warmup with the real warmup.sh in a new bash, in the
# background, its log in $PROBE_DIR/main.log; SIGINT and SIGQUIT are not ignored
# (as they would be for a plain background job), like in a container's PID 1.
# Globals:   MAIN_PID (set)
start_main() {
  env --default-signal=SIGINT,SIGQUIT bash -c 'set -Eeuo pipefail
    source "$1/server.sh"
    start_server_with_warmup "[test]" "$1/warmup.sh"' _ "${COMMON_SCRIPTS}" \
    >"${PROBE_DIR}/main.log" 2>&1 3>&- &
  MAIN_PID=$!
  harness_track "${MAIN_PID}"
}

# Whether a file has at least N lines (for wait_for, which runs it again at each poll).
# Arguments: n file
lines_at_least() {
  [[ -f "$2" ]] && (($(wc -l <"$2") >= $1))
}

# Wait (at most the given seconds) for MAIN_PID to end and reap it.
# Globals:   MAIN_STATUS (set: its exit status)
# Returns:   1 when it is still running at the deadline
main_status() {
  wait_for "$1" util_pid_gone "${MAIN_PID}" || return 1
  MAIN_STATUS=0
  wait "${MAIN_PID}" || MAIN_STATUS=$?
}

@test "resolve_uvicorn_cmd: uvicorn with the resolved settings, importing from APP_ROOT" {
  HOST=0.0.0.0 PORT=8000
  APP_ROOT="${BATS_TEST_TMPDIR}/app root"
  mkdir -p "${APP_ROOT}"
  resolve_uvicorn_cmd
  assert_equal "${UVICORN_CMD[*]}" "uvicorn src.server:app --host 0.0.0.0 --port 8000 --workers 1 --app-dir ${APP_ROOT} --http src.protocol:BoundedHttp --log-config ${APP_ROOT}/pyhelpers/uvicorn_log.json"
  assert_equal "${UVICORN_CMD[9]}" "${APP_ROOT}" # one argument, space and all
  SERVER_APP=pkg.mod:application HOST=:: PORT=8080 UVICORN_WORKERS=3 resolve_uvicorn_cmd "${PROJECT_ROOT}"
  assert_equal "${UVICORN_CMD[*]}" "uvicorn pkg.mod:application --host :: --port 8080 --workers 3 --app-dir ${PROJECT_ROOT} --http src.protocol:BoundedHttp --log-config ${PROJECT_ROOT}/pyhelpers/uvicorn_log.json"
}

@test "resolve_uvicorn_cmd: GATEWAY_WORKERS above 1 is the supervisor in the Python that imports uvicorn, with a metrics directory" {
  HOST=0.0.0.0 PORT=8000 GATEWAY_WORKERS=4 resolve_uvicorn_cmd "${PROJECT_ROOT}"
  # the Python of uvicorn's script (read from its "#!" line, not run)
  assert_equal "${UVICORN_CMD[*]}" "${PROJECT_ROOT}/.venv/bin/python -m src.supervisor src.server:app --host 0.0.0.0 --port 8000 --workers 4 --app-dir ${PROJECT_ROOT} --http src.protocol:BoundedHttp --log-config ${PROJECT_ROOT}/pyhelpers/uvicorn_log.json"
  make_stub uvicorn # a script run by bash: the first Python that imports uvicorn
  GATEWAY_WORKERS=2 resolve_uvicorn_cmd "${PROJECT_ROOT}"
  assert_equal "${UVICORN_CMD[*]:0:5}" "python -m src.supervisor src.server:app --host"
  assert_equal "$(stub_call_count uvicorn)" 0
  unset PROMETHEUS_MULTIPROC_DIR
  GATEWAY_WORKERS=2 TMPDIR="${BATS_TEST_TMPDIR}" _server_metrics_dir "[t]"
  [[ "${PROMETHEUS_MULTIPROC_DIR}" == "${BATS_TEST_TMPDIR}/metrics."* && -d "${PROMETHEUS_MULTIPROC_DIR}" ]] || fail "${PROMETHEUS_MULTIPROC_DIR:-unset}"
}

@test "resolve_uvicorn_cmd: a uvicorn script that can start is used unrun; one whose Python is gone is skipped for python, then python3 -m uvicorn" {
  make_stub uvicorn 'exit 1'
  resolve_uvicorn_cmd "${PROJECT_ROOT}"
  assert_equal "${UVICORN_CMD[*]:0:2}" "uvicorn src.server:app"
  assert_equal "$(stub_call_count uvicorn)" 0 # checked without starting it (or a Python)
  # a console script of a virtual environment that moved: its interpreter is gone
  printf '#!%s/moved venv/bin/python3\nimport uvicorn\n' "${BATS_TEST_TMPDIR}" >"${STUB_DIR}/uvicorn"
  resolve_uvicorn_cmd "${PROJECT_ROOT}"
  assert_equal "${UVICORN_CMD[*]:0:4}" "python -m uvicorn src.server:app"
  printf '#!/usr/bin/env python3\n' >"${STUB_DIR}/uvicorn" # an interpreter line with an argument
  resolve_uvicorn_cmd "${PROJECT_ROOT}"
  assert_equal "${UVICORN_CMD[*]:0:2}" "uvicorn src.server:app"
  rm "${STUB_DIR}/uvicorn"
  local only="${BATS_TEST_TMPDIR}/python3 only"
  mkdir -p "${only}"
  printf '#!/bin/sh\nexec "%s" "$@"\n' "${VENV_PYTHON}" >"${only}/python3"
  chmod +x "${only}/python3"
  ln -s "$(command -v timeout)" "${only}/timeout"
  PATH="${only}" resolve_uvicorn_cmd "${PROJECT_ROOT}"
  assert_equal "${UVICORN_CMD[*]:0:3}" "python3 -m uvicorn"
}

@test "uvicorn not installed: status 127, one clear line, nothing started" {
  local bare="${BATS_TEST_TMPDIR}/no uvicorn"
  mkdir -p "${bare}"
  ln -s /usr/bin/python3 "${bare}/python3"
  ln -s /usr/bin/python3 "${bare}/python"
  local tool
  for tool in bash dirname timeout; do
    ln -s "$(command -v "${tool}")" "${bare}/${tool}"
  done
  /usr/bin/python3 -c 'import uvicorn' 2>/dev/null && skip "the system Python has uvicorn"
  run -127 --separate-stderr env PATH="${bare}" bash -c 'source "$1/server.sh"
    start_server_with_warmup "[test]" "$2"' _ "${COMMON_SCRIPTS}" "${STUB_DIR}/warmup"
  [[ "${stderr}" == "[server] ✗ uvicorn is missing from the image: none of 'uvicorn', 'python -m uvicorn', 'python3 -m uvicorn' works"* ]]
  assert_equal "$(stub_call_count warmup)" 0
  assert_nothing_left
}

@test "a setting the bootstrap resolves is unset: status 1, one line naming it; nothing starts" {
  local name
  for name in SERVER_STOP_TIMEOUT SERVER_APP HOST PORT UVICORN_WORKERS GATEWAY_WORKERS; do
    run --separate-stderr env -u "${name}" bash -c 'source "$1/server.sh"; start_server_with_warmup "[t]" "$2"' \
      _ "${COMMON_SCRIPTS}" "${STUB_DIR}/warmup"
    assert_failure 1
    [[ "${stderr}" == *"✗ ${name} is not set; the bootstrap resolves it (python3 -m src.config, see docker/common/README.md), or set it yourself" ]] || fail "${name}: ${stderr}"
    assert_equal "$(grep -c '✗' <<<"${stderr}")" 1
  done
  assert_equal "$(stub_call_count warmup)" 0
  run -1 --separate-stderr start_server_with_warmup "[t]" "${BATS_TEST_TMPDIR}/no such warmup"
  [[ "${stderr}" == *"warmup script '${BATS_TEST_TMPDIR}/no such warmup' is not an executable file"* ]]
  assert_nothing_left
}

@test "server_health_url: the local side of HOST and PORT; WARMUP_URL wins" {
  HOST=0.0.0.0 PORT=9000 run -0 server_health_url
  assert_output "http://127.0.0.1:9000/healthz"
  HOST=:: run -0 server_health_url
  assert_output "http://[::1]:${PORT}/healthz"
  HOST=10.1.2.3 WARMUP_URL=http://x:1/ready run -0 server_health_url
  assert_output "http://x:1/ready"
  HOST=10.1.2.3 run -0 server_health_url
  assert_output "http://10.1.2.3:${PORT}/healthz"
  PORT="" run -1 --separate-stderr server_health_url
  assert_output ""
  [[ "${stderr}" == "[server] ✗ PORT is not set; the bootstrap resolves it"* ]]
}

@test "SIGINT and SIGQUIT reach the server: its shutdown hook runs, all ends within 5 s" {
  local signal
  for signal in INT QUIT; do
    rm -f "${PROBE_DIR}/shutdown" "${PROBE_DIR}/pid"
    SERVER_STOP_TIMEOUT=47.25 SERVER_APP=tests.apps.probe:healthy start_main
    wait_for 15 grep -q "healthy after" "${PROBE_DIR}/main.log" || fail "$(cat "${PROBE_DIR}/main.log")"
    kill -s "${signal}" "${MAIN_PID}"
    main_status 5
    [[ "${MAIN_STATUS}" == 0 || "${MAIN_STATUS}" == 130 || "${MAIN_STATUS}" == 143 ]] || fail "SIG${signal}: status ${MAIN_STATUS}"
    assert_equal "$(record shutdown)" clean
    run grep -c "^\[server\] SIG${signal}: stopping the server (PID $(record pid))\$" "${PROBE_DIR}/main.log"
    assert_output 1
    run ! grep -q "SIGKILL" "${PROBE_DIR}/main.log"
    assert_nothing_left
    run ! pgrep -f "sleep 47.25" # the stop watchdog ended with the server
  done
}

@test "a server that ignores SIGTERM gets SIGKILL after SERVER_STOP_TIMEOUT: status 137, nothing left" {
  SERVER_STOP_TIMEOUT=1 SERVER_APP=tests.apps.probe:stubborn start_main
  wait_for 15 grep -q "healthy after" "${PROBE_DIR}/main.log" || fail "$(cat "${PROBE_DIR}/main.log")"
  local server start took
  server="$(record pid)"
  start="${EPOCHREALTIME}"
  kill -TERM "${MAIN_PID}"
  main_status 5
  took="$(seconds_between "${EPOCHREALTIME}" "${start}")"
  assert_equal "${MAIN_STATUS}" 137
  at_most 1 "${took}"   # the timeout was given in full
  at_most "${took}" 2.5 # and not much more
  run grep -c "^\[test\] ✗ the server (PID ${server}) did not stop within SERVER_STOP_TIMEOUT=1 s: sending SIGKILL\$" "${PROBE_DIR}/main.log"
  assert_output 1
  grep -q "the server exited with status 137" "${PROBE_DIR}/main.log"
  [[ ! -e "${PROBE_DIR}/shutdown" ]]
  util_pid_gone "${server}"
  assert_nothing_left
}

@test "the server crashes 1 s after start: its status comes back within 2 s, warmup is gone" {
  SERVER_APP=tests.apps.probe:crashing start_main
  wait_for 15 test -s "${PROBE_DIR}/pid" # the app has started
  main_status 2
  assert_equal "${MAIN_STATUS}" 3
  grep -q "the server exited with status 3" "${PROBE_DIR}/main.log"
  [[ ! -e "${PROBE_DIR}/shutdown" ]]
  assert_nothing_left
}

@test "warmup gives up with WARMUP_FAIL_EXIT=1: the server is stopped cleanly, status non-zero" {
  WARMUP_FAIL_EXIT=1 WARMUP_MAX_WAIT=2 SERVER_APP=tests.apps.probe:never start_main
  main_status 15
  [[ "${MAIN_STATUS}" != 0 ]]
  assert_equal "$(record shutdown)" clean
  grep -q "not healthy after WARMUP_MAX_WAIT=2 s" "${PROBE_DIR}/main.log"
  grep -q "WARMUP_FAIL_EXIT=1: stopping the server" "${PROBE_DIR}/main.log"
  assert_nothing_left
}

@test "warmup gives up by default (WARMUP_FAIL_EXIT=0): the server keeps serving" {
  WARMUP_MAX_WAIT=1 SERVER_APP=tests.apps.probe:never start_main
  wait_for 15 grep -q "the server keeps running" "${PROBE_DIR}/main.log" || fail "$(cat "${PROBE_DIR}/main.log")"
  run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:${PORT}/healthz"
  assert_output 503
  [[ ! -e "${PROBE_DIR}/shutdown" ]]
  kill -TERM "${MAIN_PID}"
  main_status 5
  assert_equal "${MAIN_STATUS}" 143
  assert_nothing_left
}

@test "several workers share a fresh PROMETHEUS_MULTIPROC_DIR; one worker gets none" {
  local dir
  UVICORN_WORKERS=2 SERVER_APP=tests.apps.probe:counting TMPDIR="${BATS_TEST_TMPDIR}" start_main
  wait_for 30 grep -q "healthy after" "${PROBE_DIR}/main.log" || fail "$(cat "${PROBE_DIR}/main.log")"
  # one line per worker start: the second may come after the first answered /healthz
  wait_for 30 lines_at_least 2 "${PROBE_DIR}/metrics_dir" ||
    fail "$(cat "${PROBE_DIR}/metrics_dir" "${PROBE_DIR}/main.log")"
  run -0 sort -u "${PROBE_DIR}/metrics_dir"
  dir="${output%% *}"
  [[ "${#lines[@]}" == 1 && "${dir}" == "${BATS_TEST_TMPDIR}/metrics."* && -d "${dir}" ]] || fail "${output}"
  assert_equal "$(wc -l <"${PROBE_DIR}/metrics_dir")" 2
  kill -TERM "${MAIN_PID}"
  main_status 10
  assert_nothing_left

  # a directory of the user's own keeps its other files, loses the values of a previous run
  dir="${BATS_TEST_TMPDIR}/own dir"
  mkdir -p "${dir}"
  touch "${dir}/counter_123.db" "${dir}/notes.txt"
  rm "${PROBE_DIR}/metrics_dir"
  PROMETHEUS_MULTIPROC_DIR="${dir}" SERVER_APP=tests.apps.probe:counting start_main
  wait_for 30 grep -q "healthy after" "${PROBE_DIR}/main.log" || fail "$(cat "${PROBE_DIR}/main.log")"
  assert_equal "$(cat "${PROBE_DIR}/metrics_dir")" "${dir} notes.txt"
  kill -TERM "${MAIN_PID}"
  main_status 10

  rm "${PROBE_DIR}/metrics_dir"
  unset PROMETHEUS_MULTIPROC_DIR
  SERVER_APP=tests.apps.probe:counting start_main
  wait_for 30 grep -q "healthy after" "${PROBE_DIR}/main.log" || fail "$(cat "${PROBE_DIR}/main.log")"
  assert_equal "$(cat "${PROBE_DIR}/metrics_dir")" "-"
  kill -TERM "${MAIN_PID}"
  main_status 10
  assert_nothing_left
}

@test "library: sourcing sets no shell options and works under set -u" {
  run bash -c "set -u; before=\$(set +o); source '${COMMON_SCRIPTS}/server.sh'; source '${COMMON_SCRIPTS}/server.sh'
    HOST=0.0.0.0 PORT=1 server_health_url >/dev/null && [[ \"\$(set +o)\" == \"\${before}\" ]] && echo same"
  assert_success
  assert_output same
}
