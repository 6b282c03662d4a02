#!/usr/bin/env bats
# scripts/test.sh in a small copy of the project: its lint tools are stubs, its suites
# one bats file and one pytest file, so the closing lines and the exit status can be checked.

load 'helpers/common'

setup() {
  common_setup
  PROJ="${BATS_TEST_TMPDIR}/proj ect"
  mkdir -p "${PROJ}/scripts" "${PROJ}/docker/common/scripts" "${PROJ}/tests/bats" \
    "${PROJ}/tests/python" "${PROJ}/.venv/bin" "${PROJ}/.venv/tools/checkov/bin"
  cp "${PROJECT_ROOT}/scripts/test.sh" "${PROJ}/scripts/"
  cp "${COMMON_SCRIPTS}/logs.sh" "${PROJ}/docker/common/scripts/"
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
  # the lint tools: each records its name and its parent's (timeout, when run under one)
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
  assert_equal "$(tail -n 2 <<<"${output}")" "lint: 2 failed (shellcheck (3 files), hadolint (docker/*/Dockerfile))
2 passed, 0 failed, 1 skipped"
  [[ "${stderr}" == *"[test] ✗ shellcheck (3 files) failed"*"[test] ✓ ruff check"* ]] || fail "${stderr}"
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

@test "a failing test still counts once, beside a failing lint check" {
  printf 'def test_fails() -> None:\n    raise AssertionError\n' >"${PROJ}/tests/python/test_two.py"
  FAIL_LINT=ruff run --separate-stderr "${PROJ}/scripts/test.sh" lint bats pytest
  assert_failure 1
  assert_equal "$(tail -n 2 <<<"${output}")" "lint: 1 failed (ruff check)
2 passed, 1 failed, 1 skipped"
}
