#!/usr/bin/env bash
# Usage:   scripts/test.sh [--help] [lint] [bats] [pytest] [pins] [e2e]
# Summary: Run every test of the project (or the named suites, in this order):
#            lint    shellcheck over every shell file, ruff over the Python code, hadolint
#                    and checkov over each stack's Dockerfile as the build assembles it
#                    (docker/<stack>/Dockerfile, then docker/common/Dockerfile.runtime), and
#                    the Kubernetes checks: each deploy/kubernetes overlay rendered with
#                    `kubectl kustomize`, kubernetes-validate (strict, Kubernetes
#                    K8S_VERSION), checkov over the manifests
#            bats    the shell suites under tests/bats/
#            pytest  the Python suites under tests/python/
#            pins    the stacks' own pins: the tool engine's tests (and the app's in tool
#                    mode) under the pins of each requirements set that ships the tool
#                    model, then tests/pins/ (the vllm argv against the real vLLM parser),
#                    each in a venv of scripts/lib/pin_venvs.sh kept under .cache/pins/
#            e2e     the end-to-end suites under tests/e2e/ (a real Docker engine)
#          Before that it installs what the tests need, once: Debian packages with
#          apt-get (kubernetes-client only when no kubectl is on PATH), Python tools
#          into the project virtual environment .venv and checkov into its own,
#          .venv/tools/checkov (a new run only reinstalls when requirements-dev.txt
#          or requirements-checkov.txt changed).
#          It ends with one line, "N passed, N failed[, N skipped]", summing the bats
#          and pytest tests; failed lint checks get their own line just before it
#          ("lint: N failed (names)"). It exits 1 when any test or lint check failed.
#          The set-up's and each suite's time are logged ("[test] bats took N s").
#          Every external program that can hang runs under `timeout`.
#
# Environment:
#   TEST_PYTHON   the Python that makes .venv (default: python3 on PATH)
#   BATS_TEST_TIMEOUT, pytest's --timeout: per-test limits (120 s, 300 s)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly VENV="${ROOT}/.venv"
readonly REQUIREMENTS="${ROOT}/requirements-dev.txt"
# checkov pins dependencies that clash with requirements-dev.txt: it gets a venv of its own.
readonly CHECKOV_VENV="${VENV}/tools/checkov"
readonly CHECKOV_REQUIREMENTS="${ROOT}/requirements-checkov.txt"
# The Kubernetes API version the manifests are validated against.
readonly K8S_VERSION="1.33.0"
readonly K8S_OVERLAYS=(vllm trt tool vllm-volume trt-volume)
# The stacks whose Dockerfiles the lint checks.
readonly STACKS=(vllm trt tool)

# Debian packages the suites need (bats and its libraries pinned to Debian 12's).
readonly APT_PACKAGES=(
  bats bats-support bats-assert
  curl git procps python3-venv
)

# shellcheck source=docker/common/scripts/logs.sh
source "${ROOT}/docker/common/scripts/logs.sh"
# shellcheck source=docker/common/scripts/build/context.sh
source "${ROOT}/docker/common/scripts/build/context.sh"
# shellcheck source=scripts/lib/pin_venvs.sh
source "${ROOT}/scripts/lib/pin_venvs.sh"
LOG_PREFIX="[test]"
# What the pins suite runs under each requirements set: the tool engine and the app in tool mode.
readonly PINS_TESTS=(tests/python/test_tool_engine.py tests/python/test_server_app.py)

PASSED=0
FAILED=0
SKIPPED=0
FAILED_SUITES=()
LINT_FAILED=()

# Print the Usage/Summary block at the top of this file.
usage() {
  log_usage "${BASH_SOURCE[0]}"
}

# Install the Debian packages that are missing; nothing when all are there.
# Debian's kubernetes-client is only wanted when no kubectl is on PATH (some machines ship one).
# Globals: APT_PACKAGES
ensure_apt_packages() {
  local missing=() pkg wanted=("${APT_PACKAGES[@]}")
  command -v kubectl >/dev/null || wanted+=(kubernetes-client)
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("${pkg}")
  done
  ((${#missing[@]} == 0)) && return 0
  if ((EUID != 0)); then
    log_err "missing Debian packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
    return 1
  fi
  log_section "installing Debian packages: ${missing[*]}"
  timeout 600 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Make a virtual environment and install a requirements file into it, unless its stamp
# (a hash of the file and of TEST_PYTHON) says it is current.
# Globals:   TEST_PYTHON
# Arguments: venv_dir requirements_file
ensure_venv() {
  local venv="$1" requirements="$2" want have=""
  want="$(cat "${requirements}" - <<<"${TEST_PYTHON:-python3}" | sha256sum | cut -d' ' -f1)"
  [[ -r "${venv}/.requirements.sha256" ]] && have="$(cat "${venv}/.requirements.sha256")"
  [[ "${want}" == "${have}" && -x "${venv}/bin/python" ]] && return 0
  log_section "installing ${requirements##*/} into ${venv#"${ROOT}"/} (it changed or is new)"
  [[ -x "${venv}/bin/python" ]] || timeout 300 "${TEST_PYTHON:-python3}" -m venv "${venv}"
  timeout 600 "${venv}/bin/python" -m pip install -q --disable-pip-version-check -U pip
  timeout 3000 "${venv}/bin/python" -m pip install -q --disable-pip-version-check -r "${requirements}"
  printf '%s\n' "${want}" >"${venv}/.requirements.sha256"
}

# Record the outcome of one lint check (not a test: the closing line does not count it).
# Globals:   LINT_FAILED (appended to on failure)
# Arguments: name status
lint_result() {
  if (($2 == 0)); then
    log_success "$1"
  else
    LINT_FAILED+=("$1")
    log_err "$1 failed"
  fi
}

# Every shell file of the project: by extension, or by a bash shebang.
list_shell_files() {
  local f
  while IFS= read -r -d '' f; do
    case "${f}" in
      *.sh | *.bash | *.bats) printf '%s\n' "${f}" ;;
      *) head -c 64 "${f}" 2>/dev/null | grep -qE '^#!(/usr)?/bin/(env )?(ba)?sh' && printf '%s\n' "${f}" ;;
    esac
  done < <(find "${ROOT}" \( -path "${ROOT}/.git" -o -path "${ROOT}/.venv" -o -path "${ROOT}/.cache" \
    -o -name __pycache__ -o -name node_modules \) -prune -o -type f -print0)
}

# Lint: shellcheck over every shell file, ruff over the Python code, then the Dockerfiles
# and the Kubernetes checks.
run_lint() {
  log_section "lint: shellcheck, ruff, hadolint, kubernetes"
  local files=() status=0
  mapfile -t files < <(list_shell_files | sort)
  (cd "${ROOT}" && timeout 600 shellcheck --external-sources "${files[@]}") || status=$?
  lint_result "shellcheck (${#files[@]} files)" "${status}"
  status=0
  (cd "${ROOT}" && timeout 300 ruff check --quiet .) || status=$?
  lint_result "ruff check" "${status}"
  run_dockerfile_checks
  run_k8s_checks
}

# hadolint and checkov (one counted check each) over what the build builds: each stack's
# Dockerfile assembled by build_dockerfile_assemble (context.sh, as the build context gets
# it), written as docker/<stack>/Dockerfile.assembled in a temporary directory, whose
# relative paths the tools' messages name. A stack that cannot be assembled (its message
# names the missing file) fails both checks, and neither tool runs.
# Globals: STACKS
run_dockerfile_checks() {
  local out stack files=() assembled=0 status
  out="$(mktemp -d)"
  for stack in "${STACKS[@]}"; do
    files+=("docker/${stack}/Dockerfile.assembled")
    mkdir -p "${out}/docker/${stack}"
    build_dockerfile_assemble "${ROOT}/docker/${stack}" >"${out}/${files[-1]}" || assembled=1
  done
  status="${assembled}"
  ((status != 0)) || (cd "${out}" && timeout 300 hadolint "${files[@]}") || status=$?
  lint_result "hadolint (the assembled Dockerfiles)" "${status}"
  status="${assembled}"
  ((status != 0)) || (cd "${out}" && _checkov --framework dockerfile "${files[@]/#/--file=}") || status=$?
  lint_result "checkov: the assembled Dockerfiles (${#files[@]})" "${status}"
  rm -rf "${out}"
}

# Kubernetes checks, one counted check each: render every overlay, validate the rendered
# manifests strictly, run checkov over them.
# Globals: K8S_OVERLAYS, K8S_VERSION, CHECKOV_VENV
run_k8s_checks() {
  log_section "lint: kubernetes manifests (kustomize, kubernetes-validate, checkov)"
  local out overlay status
  out="$(mktemp -d)"
  for overlay in "${K8S_OVERLAYS[@]}"; do
    status=0
    # stderr is kept apart: newer kubectl versions warn about the v2-compatible fields.
    timeout 60 kubectl kustomize "${ROOT}/deploy/kubernetes/overlays/${overlay}" \
      >"${out}/${overlay}.yaml" 2>"${out}/${overlay}.err" || status=$?
    ((status == 0)) || cat "${out}/${overlay}.err" >&2
    rm -f "${out}/${overlay}.err"
    lint_result "kubectl kustomize overlays/${overlay}" "${status}"
  done
  status=0
  timeout 120 kubernetes-validate --quiet --strict -k "${K8S_VERSION}" "${out}"/*.yaml || status=$?
  lint_result "kubernetes-validate --strict (Kubernetes ${K8S_VERSION})" "${status}"
  status=0
  _checkov --framework kubernetes -d "${out}" || status=$?
  lint_result "checkov: rendered manifests" "${status}"
  rm -rf "${out}"
}

# Run checkov offline, printing only failed checks. Arguments: checkov options...
_checkov() {
  timeout 300 "${CHECKOV_VENV}/bin/checkov" --skip-download --compact --quiet "$@"
}

# Run bats over a directory and add its TAP results to the counts.
# Arguments: directory
run_bats_dir() {
  local dir="$1" tap status=0
  compgen -G "${dir}/*.bats" >/dev/null || return 0
  log_section "bats: ${dir#"${ROOT}"/}"
  tap="$(mktemp)"
  BATS_TEST_TIMEOUT="${BATS_TEST_TIMEOUT:-120}" bats --tap --recursive "${dir}" | tee "${tap}" || status=$?
  local ok notok skip
  ok="$(grep -cE '^ok ' "${tap}")" || true # grep -c exits 1 on zero matches; the count is still printed
  skip="$(grep -cE '^ok .* # skip' "${tap}")" || true # as above
  notok="$(grep -cE '^not ok ' "${tap}")" || true # as above
  rm -f "${tap}"
  PASSED=$((PASSED + ok - skip))
  SKIPPED=$((SKIPPED + skip))
  FAILED=$((FAILED + notok))
  if ((notok > 0 || (status != 0 && ok == 0))); then
    ((notok > 0)) || FAILED=$((FAILED + 1))
    FAILED_SUITES+=("bats ${dir#"${ROOT}"/}")
  fi
}

# Run pytest over a directory and add its results (from JUnit XML) to the counts.
# Arguments: directory [pytest options...]
run_pytest_dir() {
  [[ -d "$1" ]] || return 0
  run_pytest python "${1#"${ROOT}"/}" "$@"
}

# Run pytest with a Python and add its results (from JUnit XML) to the counts.
# Arguments: python name (for the log and a failure) [pytest arguments...]
run_pytest() {
  local py="$1" name="$2" xml status=0
  shift 2
  log_section "pytest: ${name}"
  xml="$(mktemp)"
  (cd "${ROOT}" && "${py}" -m pytest -p no:cacheprovider --junitxml="${xml}" "$@") || status=$?
  if ((status == 5)); then # pytest: no tests collected; nothing to count
    rm -f "${xml}"
    return 0
  fi
  local counts
  counts="$(python - "${xml}" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
total = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(total - bad - skip, bad, skip)
PY
  )" || counts="0 1 0"
  rm -f "${xml}"
  local p f s
  read -r p f s <<<"${counts}"
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  SKIPPED=$((SKIPPED + s))
  if ((f > 0 || status != 0)); then
    ((f > 0)) || FAILED=$((FAILED + 1))
    FAILED_SUITES+=("pytest ${name}")
  fi
}

# The pins suite: PINS_TESTS under each requirements set's venv, then tests/pins/.
# A venv that cannot be made counts as one failed test.
# Globals: PINS_NAMES, PINS_TESTS
run_pins() {
  local name venv
  for name in "${PINS_NAMES[@]}"; do
    log_section "pins: the venv of ${name}"
    if ! venv="$(pins_venv_ensure "${name}")"; then
      FAILED=$((FAILED + 1))
      FAILED_SUITES+=("pins ${name}")
      continue
    fi
    run_pytest "${venv}/bin/python" "${PINS_TESTS[*]} under the ${name} pins" "${PINS_TESTS[@]}"
  done
  run_bats_dir "${ROOT}/tests/pins"
}

main() {
  local suites=() arg
  for arg in "$@"; do
    case "${arg}" in
      -h | --help) usage; return 0 ;;
      lint | bats | pytest | pins | e2e) suites+=("${arg}") ;;
      *) log_err "unknown suite '${arg}'; valid: lint, bats, pytest, pins, e2e (default: all)"; return 64 ;;
    esac
  done
  ((${#suites[@]})) || suites=(lint bats pytest pins e2e)

  ensure_apt_packages
  ensure_venv "${VENV}" "${REQUIREMENTS}"
  if [[ " ${suites[*]} " == *" lint "* ]]; then
    ensure_venv "${CHECKOV_VENV}" "${CHECKOV_REQUIREMENTS}"
  fi
  export PATH="${VENV}/bin:${PATH}"
  export PROJECT_ROOT="${ROOT}"
  log_info "set-up (packages, venvs) took ${SECONDS} s"

  local start
  for arg in "${suites[@]}"; do
    start="${SECONDS}"
    case "${arg}" in
      lint) run_lint ;;
      bats) run_bats_dir "${ROOT}/tests/bats" ;;
      pytest) run_pytest_dir "${ROOT}/tests/python" ;;
      pins) run_pins ;;
      e2e)
        run_bats_dir "${ROOT}/tests/e2e"
        run_pytest_dir "${ROOT}/tests/e2e"
        ;;
    esac
    log_info "${arg} took $((SECONDS - start)) s"
  done

  ((${#FAILED_SUITES[@]} == 0)) || log_err "failed: ${FAILED_SUITES[*]}"
  if ((${#LINT_FAILED[@]} > 0)); then
    local names
    names="$(printf '%s, ' "${LINT_FAILED[@]}")"
    printf 'lint: %d failed (%s)\n' "${#LINT_FAILED[@]}" "${names%, }"
  fi
  local summary="${PASSED} passed, ${FAILED} failed"
  ((SKIPPED == 0)) || summary+=", ${SKIPPED} skipped"
  printf '%s\n' "${summary}"
  ((FAILED == 0 && ${#LINT_FAILED[@]} == 0))
}

main "$@"
