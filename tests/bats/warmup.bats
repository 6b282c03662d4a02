#!/usr/bin/env bats
# docker/common/scripts/warmup.sh against a real uvicorn serving tests/apps/probe.py

load 'helpers/common'
load '../apps/harness'

setup() {
  common_setup
  harness_setup
  WARMUP="${COMMON_SCRIPTS}/warmup.sh"
  export WARMUP_URL="http://127.0.0.1:${PORT}/healthz"
  export WARMUP_MAX_WAIT=300 WARMUP_REQUEST_TIMEOUT=2 # the bootstrap sets them (src/config)
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
  wait_for 5 util_pid_gone "${gone}" # exited, not yet reaped: a zombie
  local start="${EPOCHREALTIME}"
  run --separate-stderr "${WARMUP}" "${gone}"
  assert_failure 2
  [[ "${stderr}" == *"the server (PID ${gone}) exited after"* ]]
  wait "${gone}"
  WARMUP_SERVER_PID="${gone}" run --separate-stderr "${WARMUP}"
  assert_failure 2
  at_most "$(seconds_between "${EPOCHREALTIME}" "${start}")" 2
}

# Print how many checks warmup has logged (LOG_LEVEL=debug) in $PROBE_DIR/warmup.log.
checks_logged() {
  grep -c "check [0-9]*: status" "${PROBE_DIR}/warmup.log" || true # none yet: grep -c prints 0
}

# Whether warmup has logged more than the given number of checks.
more_checks_than() {
  (($(checks_logged) > $1))
}

# Print the time between consecutive checks of a warmup debug log (pause plus request).
# Arguments: the log text
check_gaps() {
  sed -n 's/.*check [0-9]*: status 503 after \([0-9.]*\) s/\1/p' <<<"$1" |
    awk 'NR > 1 { printf "%.3f\n", $1 - last } { last = $1 }'
}

@test "default pauses never pass 0.4 s; a server killed during a pause ends warmup with 2 at once" {
  harness_start_app never
  wait_for 10 test -s "${PROBE_DIR}/pid"
  LOG_LEVEL=debug "${WARMUP}" "${APP_PID}" 2>"${PROBE_DIR}/warmup.log" 3>&- &
  local probe=$! start="${EPOCHREALTIME}"
  harness_track "${probe}"
  sleep 6 # let the pauses grow to their longest (a tenth of the time waited: 0.6 s uncapped)
  local seen
  seen="$(checks_logged)"
  wait_for 2 more_checks_than "${seen}" # a check just ended: a pause begins
  local killed="${EPOCHREALTIME}" status=0
  kill -KILL "${APP_PID}"
  wait_for 2 util_pid_gone "${probe}"
  local took
  took="$(seconds_between "${EPOCHREALTIME}" "${killed}")"
  wait "${probe}" || status=$?
  assert_equal "${status}" 2
  at_most "${took}" 0.3 # the server is checked every 0.1 s during a pause, not at its end
  grep -q "the server (PID ${APP_PID}) exited after" "${PROBE_DIR}/warmup.log"
  # the time between two checks: pause plus request, never above the 0.4 s pause plus a margin
  local gaps
  gaps="$(check_gaps "$(<"${PROBE_DIR}/warmup.log")")"
  echo "started ${start}; gaps: $(tr '\n' ' ' <<<"${gaps}")" >&3
  at_most "$(sort -g <<<"${gaps}" | tail -n 1)" 0.55
  at_most 0.35 "$(tail -n 1 <<<"${gaps}")" # and they did grow, past the first 0.1 s
}

@test "WARMUP_WAIT_INTERVAL set: it is the longest pause" {
  harness_start_app never
  wait_for 10 test -s "${PROBE_DIR}/pid"
  LOG_LEVEL=debug WARMUP_WAIT_INTERVAL=0.15 WARMUP_MAX_WAIT=2.5 run --separate-stderr "${WARMUP}"
  assert_failure 1
  local gaps
  gaps="$(check_gaps "${stderr}")"
  echo "gaps: $(tr '\n' ' ' <<<"${gaps}")" >&3
  at_most "$(sort -g <<<"${gaps}" | tail -n 1)" 0.22 # 0.15 s, plus the request
  at_most 0.13 "$(sort -g <<<"${gaps}" | tail -n 1)" # grown from 0.1 s to it
}

@test "without WARMUP_URL it polls the URL server.sh derives from HOST and PORT" {
  harness_start_app healthy
  HOST=0.0.0.0 run --separate-stderr env -u WARMUP_URL "${WARMUP}" "${APP_PID}"
  assert_success
  [[ "${stderr}" == *"[warmup] ✓ http://127.0.0.1:${PORT}/healthz healthy after "* ]] || fail "${stderr}"
  run --separate-stderr env -u WARMUP_URL -u PORT "${WARMUP}"
  assert_failure 64
  [[ "${stderr}" == "[server] ✗ PORT is not set; the bootstrap resolves it"* ]]
}

@test "bad configuration: status 64 and one line naming the variable and its value (or that it is unset)" {
  local setting
  for setting in WARMUP_MAX_WAIT=-1 WARMUP_MAX_WAIT=abc WARMUP_WAIT_INTERVAL=1s \
    WARMUP_REQUEST_TIMEOUT=2x WARMUP_URL=ftp://x; do
    run --separate-stderr env "${setting}" "${WARMUP}"
    assert_failure 64
    assert_equal "$(printf '%s\n' "${stderr}" | wc -l)" 1
    [[ "${stderr}" == "[warmup] ✗ ${setting%%=*} '${setting#*=}' is not valid"* ]] || fail "${stderr}"
  done
  run --separate-stderr "${WARMUP}" 12x
  assert_failure 64
  [[ "${stderr}" == *"server PID '12x'"* ]]
  run -64 --separate-stderr env -u WARMUP_MAX_WAIT "${WARMUP}"
  assert_equal "${stderr}" "[warmup] ✗ WARMUP_MAX_WAIT is not set; the bootstrap resolves it (python3 -m src.config, see docker/common/README.md), or set it yourself"
}

@test "without curl: status 127 and a clear error, no request" {
  harness_start_app healthy
  local tools="${BATS_TEST_TMPDIR}/no curl"
  mkdir -p "${tools}"
  local tool
  for tool in bash dirname python3; do
    ln -s "$(command -v "${tool}")" "${tools}/${tool}"
  done
  run -127 --separate-stderr env PATH="${tools}" "${WARMUP}" "${APP_PID}"
  assert_equal "${stderr}" "[warmup] ✗ curl is not installed; install it in the image (every stack's Dockerfile does) to check the server's health"
  run grep -c "GET /healthz" "${PROBE_DIR}/server.log"
  assert_output 0
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
  wait_for 1 util_pid_gone "${probe}"
  local status=0
  wait "${probe}" || status=$?
  assert_equal "${status}" 143
  wait_for 1 util_pid_gone "${child}"
}
