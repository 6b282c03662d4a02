#!/usr/bin/env bats
# docker/common/scripts/lifecycle.sh: run_docker_main with a stub stack (bootstrap
# and start script) and a real uvicorn serving tests/apps/probe.py
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'
load '../apps/harness'

readonly SECRET="s3cret-key-do-not-print"

setup() {
  common_setup
  harness_setup
  unset TEXT_API_KEY TEXT_API_KEY_FILE
  export SERVER_APP=tests.apps.probe:healthy
  STACK_DIR="${BATS_TEST_TMPDIR}/stack scripts"
  mkdir -p "${STACK_DIR}"
  cat >"${STACK_DIR}/bootstrap.sh" <<BOOT
# a stub stack bootstrap: records that it ran, fails on request
stack_bootstrap() {
  printf 'ran\n' >>"${BATS_TEST_TMPDIR}/bootstrap.calls"
  log_info "[demo]" "bootstrap ran"
  export BOOTSTRAPPED=yes
  # what a real bootstrap resolves (src/config) and exports; HOST and PORT come from the harness
  export SERVER_STOP_TIMEOUT=9 WARMUP_MAX_WAIT=120 WARMUP_REQUEST_TIMEOUT=2 UVICORN_WORKERS=1 GATEWAY_WORKERS=1
  [[ -z "\${BOOTSTRAP_FAIL:-}" ]] || return "\${BOOTSTRAP_FAIL}"
}
BOOT
  cat >"${STACK_DIR}/start_server.sh" <<'START'
#!/usr/bin/env bash
echo "start_server.sh pid=$$ bootstrapped=${BOOTSTRAPPED:-no} app_root=${APP_ROOT}"
START
  chmod +x "${STACK_DIR}/start_server.sh"
  # a stack main.sh: MODE and TARGET choose the start mode and target
  MAIN="${BATS_TEST_TMPDIR}/main.sh"
  cat >"${MAIN}" <<MAIN
#!/usr/bin/env bash
set -Eeuo pipefail
source "${COMMON_SCRIPTS}/lifecycle.sh"
usage() { printf 'demo usage: main.sh [--help] [command...]\n'; }
echo "main pid \$\$" >&2
target=()
[[ -z "\${TARGET:-}" ]] || target=("\${TARGET}")
run_docker_main demo "${STACK_DIR}" usage "\${MODE:-direct_common}" "\${target[@]}" -- "\$@"
MAIN
  chmod +x "${MAIN}"
}

teardown() {
  harness_teardown
}

# Print how many times the stub bootstrap ran.
bootstrap_runs() {
  if [[ -f "${BATS_TEST_TMPDIR}/bootstrap.calls" ]]; then wc -l <"${BATS_TEST_TMPDIR}/bootstrap.calls"; else echo 0; fi
}

@test "--help and -h print the stack usage, status 0, before bootstrap and without a server" {
  local arg
  for arg in --help -h; do
    run -0 --separate-stderr "${MAIN}" "${arg}"
    assert_output "demo usage: main.sh [--help] [command...]"
  done
  assert_equal "$(bootstrap_runs)" 0
  assert_nothing_left
  run -1 --separate-stderr "${MAIN}" --frobnicate
  [[ "${stderr}" == *"[demo] ✗ unknown option '--frobnicate'; main.sh takes --help"*"or a command"* ]]
  assert_equal "$(bootstrap_runs)" 0
}

@test "direct_common: bootstrap, server healthy; SIGTERM runs the shutdown hook, all gone within 5 s, key never shown" {
  TEXT_API_KEY="${SECRET}" "${MAIN}" >"${PROBE_DIR}/main.log" 2>&1 3>&- &
  local main=$!
  harness_track "${main}"
  wait_for 20 grep -q "healthy after" "${PROBE_DIR}/main.log" || fail "$(cat "${PROBE_DIR}/main.log")"
  run ps -eo args=
  refute_output --partial "${SECRET}"
  kill -TERM "${main}"
  local start="${EPOCHREALTIME}" status=0
  wait_for 5 util_pid_gone "${main}" || fail "still running 5 s after SIGTERM"
  wait "${main}" || status=$?
  assert_equal "${status}" 143
  at_most "$(seconds_between "${EPOCHREALTIME}" "${start}")" 5
  assert_equal "$(record shutdown)" clean
  assert_nothing_left
  run cat "${PROBE_DIR}/main.log"
  refute_output --partial "${SECRET}"
  assert_line --index 1 "[demo] bootstrap ran" # after "main pid", before the server starts
  assert_line --partial "[demo] starting the server: uvicorn tests.apps.probe:healthy --host 127.0.0.1 --port ${PORT}"
}

@test "script mode: bootstrap, then exec the stack's start_server.sh (same PID), APP_ROOT exported" {
  MODE=script TEXT_API_KEY="${SECRET}" run -0 --separate-stderr "${MAIN}"
  [[ "${stderr}" =~ main\ pid\ ([0-9]+) ]]
  assert_output "start_server.sh pid=${BASH_REMATCH[1]} bootstrapped=yes app_root=${PROJECT_ROOT}"
  refute_output --partial "${SECRET}"
  [[ "${stderr}" != *"${SECRET}"* ]]
  # APP_ROOT unset: the directory two levels above common/scripts
  unset APP_ROOT
  MODE=script TEXT_API_KEY=k run -0 "${MAIN}"
  assert_output --partial "app_root=${PROJECT_ROOT}/docker"
}

@test "script mode with a start target: that script runs" {
  printf '#!/usr/bin/env bash\necho custom start\n' >"${STACK_DIR}/other start.sh"
  chmod +x "${STACK_DIR}/other start.sh"
  MODE=script TARGET="${STACK_DIR}/other start.sh" TEXT_API_KEY=k run -0 --separate-stderr "${MAIN}"
  assert_output "custom start"
}

@test "script mode, start script missing or not executable: status 1 listing the directory" {
  rm "${STACK_DIR}/start_server.sh"
  MODE=script TEXT_API_KEY=k run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"start script '${STACK_DIR}/start_server.sh' is missing or not executable; its directory holds (* executable): bootstrap.sh"* ]]
  printf 'echo x\n' >"${STACK_DIR}/start_server.sh"
  MODE=script TEXT_API_KEY=k run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"holds (* executable): bootstrap.sh start_server.sh" ]] || fail "${stderr}"
  assert_output ""
}

@test "an unknown start mode: status 1 naming the valid modes, no bootstrap, nothing started" {
  MODE=fastest TEXT_API_KEY=k run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[demo] ✗ start mode 'fastest' is not valid; use direct_common (the shared server.sh) or script"* ]]
  assert_equal "$(bootstrap_runs)" 0
  assert_nothing_left
}

@test "a command after --: runs after bootstrap, without an API key; an unknown one: 127" {
  # shellcheck disable=SC2016 # expanded by the command, after bootstrap
  run -0 --separate-stderr "${MAIN}" bash -c 'echo "bootstrapped=${BOOTSTRAPPED} args=$*"' _ "a b" c
  assert_output "bootstrapped=yes args=a b c"
  assert_equal "$(bootstrap_runs)" 1
  run -127 --separate-stderr "${MAIN}" no-such-program
  [[ "${stderr}" == *"[demo] ✗ command 'no-such-program' not found"* ]]
  assert_nothing_left
}

@test "bootstrap missing, without stack_bootstrap, or failing: status 1 with its message, no server" {
  BOOTSTRAP_FAIL=3 TEXT_API_KEY=k run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[demo] ✗ bootstrap '${STACK_DIR}/bootstrap.sh' failed with status 3; see the message above"* ]]
  sed -i 's/^stack_bootstrap()/other_name()/' "${STACK_DIR}/bootstrap.sh"
  TEXT_API_KEY=k run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[demo] ✗ bootstrap '${STACK_DIR}/bootstrap.sh' defines no stack_bootstrap function"* ]]
  assert_equal "$(bootstrap_runs)" 1 # only the first run reached it
  rm "${STACK_DIR}/bootstrap.sh"
  TEXT_API_KEY=k run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"bootstrap script '${STACK_DIR}/bootstrap.sh' not found"* ]]
  assert_nothing_left
}

@test "API key rules: each bad case is status 1 with a message saying which; the key never shows" {
  local file="${BATS_TEST_TMPDIR}/api key"
  printf '   \n\n' >"${file}"
  local -a cases=(
    "|no API key: set TEXT_API_KEY, or TEXT_API_KEY_FILE"
    "TEXT_API_KEY=|TEXT_API_KEY is set but empty or whitespace only"
    "TEXT_API_KEY=   |TEXT_API_KEY is set but empty or whitespace only"
    "TEXT_API_KEY_FILE=${BATS_TEST_TMPDIR}/nope|TEXT_API_KEY_FILE '${BATS_TEST_TMPDIR}/nope' is not a readable file"
    "TEXT_API_KEY_FILE=${BATS_TEST_TMPDIR}|TEXT_API_KEY_FILE '${BATS_TEST_TMPDIR}' is not a readable file"
    "TEXT_API_KEY_FILE=${file}|TEXT_API_KEY_FILE '${file}' holds no key (it is empty or whitespace only)"
  )
  local case setting
  for case in "${cases[@]}"; do
    setting="${case%%|*}"
    MODE=script run -1 --separate-stderr env ${setting:+"${setting}"} "${MAIN}"
    [[ "${stderr}" == *"[demo] ✗ ${case#*|}"* ]] || fail "${setting}: ${stderr}"
    assert_output "" # the start script never ran
  done
  printf '%s\n' "${SECRET}" >"${file}"
  MODE=script TEXT_API_KEY="${SECRET}" TEXT_API_KEY_FILE="${file}" run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"both TEXT_API_KEY and TEXT_API_KEY_FILE are set; set only one"* ]]
  [[ "${stderr}" != *"${SECRET}"* ]]
  MODE=script TEXT_API_KEY_FILE="${file}" run -0 --separate-stderr "${MAIN}"
  assert_output --partial "start_server.sh pid="
  [[ "${stderr}" != *"${SECRET}"* ]]
}

@test "library: sourcing sets no shell options and works under set -u" {
  run bash -c "set -u; before=\$(set +o); source '${COMMON_SCRIPTS}/lifecycle.sh'; source '${COMMON_SCRIPTS}/lifecycle.sh'
    TEXT_API_KEY=k lifecycle_require_api_key '[t]' && [[ \"\$(set +o)\" == \"\${before}\" ]] && echo same"
  assert_success
  assert_output same
}
