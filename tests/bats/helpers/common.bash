# shellcheck shell=bash
# Shared set-up for every bats suite. Load it from a suite with
#   load 'helpers/common'
# and call common_setup from the suite's setup().
#
# It gives each test:
#   PROJECT_ROOT   the repository root
#   COMMON_SCRIPTS docker/common/scripts
#   STUB_DIR       an empty directory, first on PATH, for stub programs
#                  (its path holds a space, to catch quoting bugs)
#   PATH           STUB_DIR, the project's .venv/bin, then the system directories only
#                  (hide_programs takes programs out of them, e.g. a real nvidia-smi)
#   VENV_PYTHON    the project's Python (with the test dependencies)
#   no NVML library (nvml_library_present adds one)

PROJECT_ROOT="$(cd "$(dirname "${BATS_TEST_FILENAME}")/../.." && pwd)"
if [[ ! -d "${PROJECT_ROOT}/docker" ]]; then # suites one level deeper (tests/e2e/x)
  PROJECT_ROOT="$(cd "${PROJECT_ROOT}/.." && pwd)"
fi
export PROJECT_ROOT
export COMMON_SCRIPTS="${PROJECT_ROOT}/docker/common/scripts"
export VENV_PYTHON="${PROJECT_ROOT}/.venv/bin/python"
export SYSTEM_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Load bats-support and bats-assert, make the stub dir and reset PATH.
common_setup() {
  bats_require_minimum_version 1.5.0
  bats_load_library bats-support
  bats_load_library bats-assert
  export STUB_DIR="${BATS_TEST_TMPDIR}/stub bin"
  mkdir -p "${STUB_DIR}"
  export PATH="${STUB_DIR}:${PROJECT_ROOT}/.venv/bin:${SYSTEM_PATH}"
  unset LOG_LEVEL LOG_FORMAT LOG_PREFIX NO_COLOR
  # NVML's library is absent, however the host is set up: GPU detection looks for it on
  # LD_LIBRARY_PATH only (nvml_library_present puts one there), not in the host's loader cache
  # or system directories
  unset LD_LIBRARY_PATH
  export _NVML_LD_CACHE="${BATS_TEST_TMPDIR}/no ld.so.cache" _NVML_LIB_DIRS=""
}

# Make NVML's library (libnvidia-ml.so.1) present, as the NVIDIA container runtime does with
# GPUs: an empty file on LD_LIBRARY_PATH, which GPU detection finds, so it asks the NVML helper
# (a real binding fails to load it and says so; a fake pynvml never loads it).
nvml_library_present() {
  local dir="${BATS_TEST_TMPDIR}/nvidia lib"
  mkdir -p "${dir}"
  : >"${dir}/libnvidia-ml.so.1"
  export LD_LIBRARY_PATH="${dir}"
}

# Write a stub program into STUB_DIR. It appends its argv (one line, words
# separated by spaces) to "$STUB_DIR/<name>.calls", with --stdin also its
# stdin to "$STUB_DIR/<name>.stdin", then runs the body.
# Arguments: [--stdin] name [body (shell code; default: exit 0)]
make_stub() {
  local read_stdin=""
  if [[ "$1" == --stdin ]]; then
    read_stdin="cat >>\"${STUB_DIR}/$2.stdin\""
    shift
  fi
  local name="$1" body="${2:-exit 0}"
  cat >"${STUB_DIR}/${name}" <<STUB
#!/usr/bin/env bash
printf '%s\n' "\$*" >>"${STUB_DIR}/${name}.calls"
${read_stdin}
${body}
STUB
  chmod +x "${STUB_DIR}/${name}"
}

# Print how many times a stub was called (0 when never).
# Arguments: name
stub_call_count() {
  local file="${STUB_DIR}/$1.calls"
  if [[ -f "${file}" ]]; then wc -l <"${file}" | tr -d ' '; else printf '0'; fi
}

# Make programs absent, however the host is set up (a GPU host has a real
# nvidia-smi in /usr/bin): PATH becomes STUB_DIR, .venv/bin and one directory of
# links to everything in the system directories except the named programs. A stub
# written into STUB_DIR afterwards still comes first.
# Arguments: program...
hide_programs() {
  local system="${BATS_TEST_TMPDIR}/system bin" dir name
  mkdir -p "${system}"
  for dir in ${SYSTEM_PATH//:/ }; do
    [[ -d "${dir}" && ! -L "${dir}" ]] || continue # /bin -> usr/bin: already linked
    # the first directory of SYSTEM_PATH wins, as on PATH: later duplicates fail to link
    ln -s "${dir}"/* "${system}/" 2>/dev/null || true
  done
  for name in "$@"; do
    rm -f "${system}/${name}"
  done
  export PATH="${STUB_DIR}:${PROJECT_ROOT}/.venv/bin:${system}"
}
