#!/usr/bin/env bats
# docker/common/scripts/logs.sh
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'

setup() {
  common_setup
  set -u
  # shellcheck source=docker/common/scripts/logs.sh
  source "${COMMON_SCRIPTS}/logs.sh"
}

@test "every level writes to stderr and nothing to stdout" {
  run --separate-stderr bash -c "source '${COMMON_SCRIPTS}/logs.sh'; log_info a; log_warn b; log_err c; log_success d; log_section e"
  assert_success
  assert_equal "${output}" ""
  assert_equal "${stderr}" "a
⚠ b
✗ c
✓ d

e"
}

@test "a [prefix] first argument goes before the mark; LOG_PREFIX is the default" {
  run --separate-stderr log_err "[build]" "TAG 'x' is bad"
  assert_equal "${stderr}" "[build] ✗ TAG 'x' is bad"
  LOG_PREFIX="[gpu]"
  run --separate-stderr log_warn "no GPU"
  assert_equal "${stderr}" "[gpu] ⚠ no GPU"
  run --separate-stderr log_info "[not a prefix alone]"
  assert_equal "${stderr}" "[gpu] [not a prefix alone]"
}

@test "LOG_LEVEL filters lower levels; log_debug shows only at debug" {
  run --separate-stderr log_debug hidden
  assert_equal "${stderr}" ""
  LOG_LEVEL=debug
  run --separate-stderr log_debug shown
  assert_equal "${stderr}" "· shown"
  export LOG_LEVEL=warn
  run --separate-stderr bash -c "source '${COMMON_SCRIPTS}/logs.sh'; log_info i; log_success s; log_section x; log_warn w; log_err e"
  assert_equal "${stderr}" "⚠ w
✗ e"
  export LOG_LEVEL=error
  run --separate-stderr bash -c "source '${COMMON_SCRIPTS}/logs.sh'; log_warn w; log_err e"
  assert_equal "${stderr}" "✗ e"
}

@test "LOG_LEVEL=loud: log_check_config names the value and the valid ones, status 1" {
  LOG_LEVEL=loud
  run --separate-stderr log_check_config
  assert_failure 1
  assert_equal "${stderr}" "[logs] ✗ LOG_LEVEL 'loud' is not valid; use one of: debug, info, warn, error (default info)"
  # logging still works (as info) instead of breaking the caller
  run --separate-stderr log_info still
  assert_success
  assert_equal "${stderr}" "still"
}

@test "LOG_FORMAT=xml is rejected by log_check_config; valid settings pass" {
  LOG_FORMAT=xml run --separate-stderr log_check_config
  assert_failure 1
  [[ "${stderr}" == *"LOG_FORMAT 'xml' is not valid; use text or json"* ]]
  LOG_LEVEL=debug LOG_FORMAT=json run log_check_config
  assert_success
}

@test "no colour codes in a pipe, even with a terminal-like TERM" {
  TERM=xterm-256color run --separate-stderr log_err boom
  [[ "${stderr}" != *$'\e'* ]]
}

@test "colour on a terminal, none with NO_COLOR" {
  command -v script >/dev/null || skip "util-linux 'script' is needed to give stderr a terminal"
  run script -qec "bash -c \"source '${COMMON_SCRIPTS}/logs.sh'; log_err boom\"" /dev/null
  [[ "${output}" == *$'\e[31m'*boom* ]]
  run script -qec "NO_COLOR=1 bash -c \"source '${COMMON_SCRIPTS}/logs.sh'; log_err boom\"" /dev/null
  [[ "${output}" != *$'\e'* ]]
}

@test "LOG_FORMAT=json writes one valid JSON object per line with exact escaping" {
  LOG_FORMAT=json
  local msg=$'quote " backslash \\ newline\nand tab\tbell\a esc\e end & done'
  run --separate-stderr log_err "[build]" "${msg}"
  assert_success
  assert_equal "${#lines[@]}" 0
  run "${VENV_PYTHON}" -c '
import json, sys
lines = sys.argv[1].splitlines()
assert len(lines) == 1, lines
obj = json.loads(lines[0])
assert obj["msg"] == sys.argv[2], (obj["msg"], sys.argv[2])
assert obj["level"] == "error" and obj["prefix"] == "build"
assert obj["ts"].endswith("Z") and len(obj["ts"]) == 20
print("ok")' "${stderr}" "${msg}"
  assert_success
  assert_output ok
}

@test "json section lines carry no bare blank line" {
  LOG_FORMAT=json
  run --separate-stderr log_section "step two"
  assert_equal "$(printf '%s\n' "${stderr}" | wc -l)" 1
}

@test "sourcing twice is harmless and keeps the functions" {
  # shellcheck source=docker/common/scripts/logs.sh
  source "${COMMON_SCRIPTS}/logs.sh"
  run --separate-stderr log_success again
  assert_equal "${stderr}" "✓ again"
}

@test "library sets no shell options and survives set -u with nothing set" {
  run bash -c "set -u; before=\$(set +o); source '${COMMON_SCRIPTS}/logs.sh'; log_info x 2>/dev/null; [[ \"\$(set +o)\" == \"\${before}\" ]] && echo same"
  assert_success
  assert_output same
}
