#!/usr/bin/env bats
# scripts/lib/wheelhouse.sh, container.sh and hub_fixture.sh without Docker: bad settings,
# the wheelhouse cache and its --app-only filter (pip stubbed), the API key kept out of argv.
# The real engine, mirror and pip runs are in tests/e2e/.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'

setup() {
  common_setup
  set -u
  # shellcheck source=scripts/lib/wheelhouse.sh
  source "${PROJECT_ROOT}/scripts/lib/wheelhouse.sh"
  # shellcheck source=scripts/lib/container.sh
  source "${PROJECT_ROOT}/scripts/lib/container.sh"
  # shellcheck source=scripts/lib/hub_fixture.sh
  source "${PROJECT_ROOT}/scripts/lib/hub_fixture.sh"
  export WHEELHOUSE_CACHE="${BATS_TEST_TMPDIR}/wheel cache"
  # a pip stand-in: records the requirements it was given, writes one wheel into -d DIR
  # shellcheck disable=SC2016 # the stub's own variables, expanded when it runs
  make_stub py 'dir=""; req=""; while (($#)); do case "$1" in -d) dir="$2"; shift ;; -r) req="$2"; shift ;; esac; shift; done
cat "${req}" >>"'"${STUB_DIR}"'/py.requirements"; touch "${dir}/pkg-1.0-py3-none-any.whl"'
  export WHEELHOUSE_PIP="${STUB_DIR}/py"
  REQ="${BATS_TEST_TMPDIR}/req dir/requirements.txt"
  mkdir -p "${REQ%/*}"
  printf '# a comment\nvllm==0.33.0  # engine\nfastapi==0.136.3\n\nuvicorn==0.54.0\n' >"${REQ}"
}

@test "wheelhouse: made once, then reused without pip; --app-only leaves out the engine lines" {
  run --separate-stderr wheelhouse_ensure "${REQ}"
  assert_success
  local dir="${output}"
  [[ "${dir}" == "${WHEELHOUSE_CACHE}/"* && -f "${dir}/pkg-1.0-py3-none-any.whl" ]]
  assert_equal "$(stub_call_count py)" 1
  [[ "$(cat "${STUB_DIR}/py.calls")" == "-m pip download "*"--only-binary=:all: -d ${dir} -r "* ]]
  run --separate-stderr wheelhouse_ensure "${REQ}"
  assert_output "${dir}"
  assert_equal "${stderr}" "[wheels] reusing the wheelhouse ${dir##*/} (1 wheels) for requirements.txt"
  assert_equal "$(stub_call_count py)" 1
  run -0 wheelhouse_ensure --app-only "${REQ}"
  [[ "${output}" != "${dir}" ]]
  assert_equal "$(stub_call_count py)" 2
  assert_equal "$(tail -n 2 "${STUB_DIR}/py.requirements")" $'fastapi==0.136.3\nuvicorn==0.54.0'
}

@test "wheelhouse: --no-deps reaches pip and is a wheelhouse of its own; option lines stay with the file" {
  printf -- '--extra-index-url https://download.example/whl/cpu\ntorch==2.13.0+cpu\n' >"${REQ}"
  run -0 wheelhouse_ensure "${REQ}"
  local resolved="${output}"
  run -0 wheelhouse_ensure --no-deps "${REQ}"
  [[ "${output}" != "${resolved}" ]]
  assert_equal "$(stub_call_count py)" 2
  [[ "$(tail -n 1 "${STUB_DIR}/py.calls")" == *"--only-binary=:all: --no-deps -d "* ]]
  [[ "$(head -n 1 "${STUB_DIR}/py.calls")" != *--no-deps* ]]
  # the host's pip decides where wheels come from: no index option reaches it
  assert_equal "$(sort -u "${STUB_DIR}/py.requirements")" "torch==2.13.0+cpu"
  run --separate-stderr wheelhouse_ensure --offline "${REQ}"
  assert_failure 1
  assert_equal "${stderr}" "[wheels] ✗ unknown option '--offline'; valid: --app-only, --no-deps"
  assert_equal "$(stub_call_count py)" 2
}

@test "wheelhouse: a failing pip is reported with its log, status 1, and nothing is reused later" {
  make_stub py 'echo "ERROR: No matching distribution found for nosuch==9" >&2; exit 1'
  run --separate-stderr wheelhouse_ensure "${REQ}"
  assert_failure 1
  assert_equal "${output}" ""
  [[ "${stderr}" == *"[wheels] ✗ pip download for requirements.txt failed or ran past WHEELHOUSE_TIMEOUT=1800s"*"No matching distribution found for nosuch==9"* ]]
  run --separate-stderr wheelhouse_ensure "${REQ}"
  assert_failure 1
  assert_equal "$(stub_call_count py)" 2
}

@test "wheelhouse: bad settings are one line naming the value; pip never runs" {
  run --separate-stderr wheelhouse_ensure "${BATS_TEST_TMPDIR}/missing.txt"
  assert_failure 1
  assert_equal "${stderr}" "[wheels] ✗ requirements file '${BATS_TEST_TMPDIR}/missing.txt' is not readable; pass a stack's requirements.txt"
  WHEELHOUSE_TIMEOUT=soon run --separate-stderr wheelhouse_ensure "${REQ}"
  assert_failure 1
  assert_equal "${stderr}" "[wheels] ✗ WHEELHOUSE_TIMEOUT 'soon' is not valid; use a whole number of seconds above 0 (default 1800)"
  assert_equal "$(stub_call_count py)" 0
}

@test "container: the API key reaches docker by name and curl on stdin, never in an argv" {
  make_stub docker 'echo cid123'
  make_stub --stdin curl 'printf "{}\n200\n"'
  export DOCKER="${STUB_DIR}/docker" TEXT_API_KEY="secret-key-value-42"
  run -0 container_start "img:tag" 8123 --read-only
  assert_output cid123
  assert_equal "$(cat "${STUB_DIR}/docker.calls")" "run -d --network host -e PORT=8123 -e TEXT_API_KEY --read-only img:tag"
  run -0 container_curl_key http://127.0.0.1:8123/v1/classify -d '{"input": "x"}'
  assert_output $'{}\n200'
  run grep -rF "${TEXT_API_KEY}" "${STUB_DIR}/docker.calls" "${STUB_DIR}/curl.calls"
  assert_failure 1
  assert_equal "$(cat "${STUB_DIR}/curl.stdin")" "header = \"Authorization: Bearer ${TEXT_API_KEY}\""
}

@test "container: waiting on a URL that never answers ends at the deadline with one line" {
  make_stub curl 'printf 000; exit 7'
  run --separate-stderr container_wait_2xx http://127.0.0.1:9/healthz 1
  assert_failure 1
  assert_equal "${stderr}" "[container] ✗ http://127.0.0.1:9/healthz did not answer 2xx within 1s (last status 000)"
}

@test "hub fixture: a mirror that cannot start is reported and nothing is left running" {
  make_stub py 'echo "Traceback: no module named olah" >&2; exit 1'
  HUB_FIXTURE_PYTHON="${STUB_DIR}/py" run --separate-stderr hub_fixture_start "${BATS_TEST_TMPDIR}"
  assert_failure 1
  [[ "${stderr}" == "[hub] ✗ the Olah mirror did not answer within 60s (HUB_FIXTURE_TIMEOUT); its last lines:"*"no module named olah"* ]]
  run -0 hub_fixture_stop
}
