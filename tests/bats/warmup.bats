#!/usr/bin/env bats
# docker/common/scripts/warmup.sh against a real uvicorn serving tests/apps/probe.py

load 'helpers/common'
load '../apps/harness'

setup() {
  common_setup
  harness_setup
  WARMUP="${COMMON_SCRIPTS}/warmup.sh"
  export WARMUP_URL="http://127.0.0.1:${PORT}/healthz"
}

teardown() {
  harness_teardown
}

# Print the epoch at which warmup reported healthy (from its log in $stderr).
ready_at() {
  [[ "${stderr}" =~ ready\ at\ epoch\ ([0-9.]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

@test "--help prints the Usage block and sends no request" {
  harness_start_app healthy
  wait_for 10 test -s "${PROBE_DIR}/pid"
  run -0 "${WARMUP}" --help
  assert_line --index 0 --partial "Usage:   warmup.sh [--help] [server_pid]"
  assert_output --partial "Exit status: 0 healthy, 1 timed out, 2 server gone, 64 bad configuration"
  refute_output --partial "set -Eeuo"
  run grep -c "GET /healthz" "${PROBE_DIR}/server.log"
  assert_output 0
}

@test "/healthz 503 for 2 s then 200: healthy reported within 0.5 s of the switch, not before" {
  harness_start_app late
  run --separate-stderr "${WARMUP}" "${APP_PID}"
  assert_success
  local switch ready first_ok gap
  switch="$(record switch_at)"
  first_ok="$(record first_ok_at)"
  ready="$(ready_at)"
  gap="$(seconds_between "${ready}" "${switch}")"
  echo "switch ${switch}, first 200 ${first_ok}, warmup ready ${ready}: gap ${gap} s" >&3
  at_most 0 "${gap}"   # never healthy before the app was
  at_most "${gap}" 0.5 # and late by half a second at most
  at_most "${switch}" "${first_ok}"
  [[ "${stderr}" == *"[warmup] ✓ ${WARMUP_URL} healthy after "* ]]
}

@test "never healthy with WARMUP_MAX_WAIT=2: status 1 after about 2 s, naming the setting" {
  harness_start_app never
  wait_for 10 test -s "${PROBE_DIR}/pid"
  local start="${EPOCHREALTIME}"
  WARMUP_MAX_WAIT=2 run --separate-stderr "${WARMUP}" "${APP_PID}"
  local took
  took="$(seconds_between "${EPOCHREALTIME}" "${start}")"
  assert_failure 1
  at_most 1.9 "${took}"
  at_most "${took}" 3
  [[ "${stderr}" == *"not healthy after WARMUP_MAX_WAIT=2 s"*"last status 503"* ]]
  [[ "${stderr}" != *"✓"* ]]
}

@test "a /healthz that hangs: each check has its own limit and the loop keeps going" {
  harness_start_app hanging
  wait_for 10 test -s "${PROBE_DIR}/pid"
  local start="${EPOCHREALTIME}"
  WARMUP_MAX_WAIT=3 run --separate-stderr "${WARMUP}"
  local took
  took="$(seconds_between "${EPOCHREALTIME}" "${start}")"
  assert_failure 1
  at_most "${took}" 4
  [[ "${stderr}" == *"not healthy after WARMUP_MAX_WAIT=3 s ("*" checks, no answer)"* ]] || fail "${stderr}"
  run wc -l <"${PROBE_DIR}/requests"
  ((output >= 2)) || fail "only ${output} request(s) reached the hanging app"
}

@test "the server's process is gone (a zombie too): status 2 at once, not after WARMUP_MAX_WAIT" {
  sleep 0.2 3>&- &
  local gone=$!
  wait_for 5 harness_gone "${gone}" # exited, not yet reaped: a zombie
  local start="${EPOCHREALTIME}"
  run --separate-stderr "${WARMUP}" "${gone}"
  assert_failure 2
  [[ "${stderr}" == *"the server (PID ${gone}) exited after"* ]]
  wait "${gone}"
  WARMUP_SERVER_PID="${gone}" run --separate-stderr "${WARMUP}"
  assert_failure 2
  at_most "$(seconds_between "${EPOCHREALTIME}" "${start}")" 2
}

@test "bad configuration: status 64 and one line naming the variable and its value" {
  local setting
  for setting in WARMUP_MAX_WAIT=-1 WARMUP_MAX_WAIT=abc WARMUP_WAIT_INTERVAL=0 \
    WARMUP_WAIT_INTERVAL=1s WARMUP_REQUEST_TIMEOUT=0.0 WARMUP_URL=ftp://x; do
    run --separate-stderr env "${setting}" "${WARMUP}"
    assert_failure 64
    assert_equal "$(printf '%s\n' "${stderr}" | wc -l)" 1
    [[ "${stderr}" == "[warmup] ✗ ${setting%%=*} '${setting#*=}' is not valid"* ]] || fail "${stderr}"
  done
  run --separate-stderr "${WARMUP}" 12x
  assert_failure 64
  [[ "${stderr}" == *"server PID '12x'"* ]]
}

@test "without curl it checks with Python; with neither, status 127 and a clear error" {
  harness_start_app healthy
  local tools="${BATS_TEST_TMPDIR}/no curl"
  mkdir -p "${tools}"
  local tool
  for tool in bash dirname sleep timeout python3; do
    ln -s "$(command -v "${tool}")" "${tools}/${tool}"
  done
  run --separate-stderr env PATH="${tools}" "${WARMUP}" "${APP_PID}"
  assert_success
  [[ "${stderr}" == *"healthy after"* ]]
  rm "${tools}/python3"
  run -127 --separate-stderr env PATH="${tools}" "${WARMUP}"
  [[ "${stderr}" == *"neither curl nor python3 is installed"* ]]
}

@test "SIGTERM while waiting: warmup ends at once and leaves no request or pause behind" {
  harness_start_app hanging
  wait_for 10 test -s "${PROBE_DIR}/pid"
  WARMUP_SERVER_PID="${APP_PID}" "${WARMUP}" 2>/dev/null 3>&- &
  local probe=$!
  wait_for 5 test -s "${PROBE_DIR}/requests" # a request is in flight
  local child
  child="$(ps -o pid= --ppid "${probe}" | tr -d ' ')"
  [[ -n "${child}" ]]
  kill -TERM "${probe}"
  wait_for 1 harness_gone "${probe}"
  local status=0
  wait "${probe}" || status=$?
  assert_equal "${status}" 143
  wait_for 1 harness_gone "${child}"
}
