# shellcheck shell=bash
# A cached pip wheelhouse for air-gapped image builds (docker/build.sh's PIP_WHEELHOUSE).
#
# The Dockerfiles install with `pip install --no-index --find-links` when the build context
# holds wheels, so the wheelhouse must hold every wheel the stack's requirements resolve to.
# It is made on the host with the host's pip (which has the CA bundle and any local wheels,
# such as the CPU build of torch), for the host's Python (3.11, the base image's too), and
# kept under the cache directory, named after a hash of the requirements it was made from:
# a second call with the same requirements reuses it without touching the network.
#
# Configuration:
#   WHEELHOUSE_CACHE   where wheelhouses are kept (default <repo>/.cache/wheelhouse)
#   WHEELHOUSE_PIP     the pip command's Python (default python3 on PATH)
#   WHEELHOUSE_TIMEOUT seconds `pip download` may take (default 1800)
#
# A library: functions and constants only, no options set, safe under `set -u`.

_WHEELHOUSE_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/logs.sh
source "${_WHEELHOUSE_LIB_DIR}/../../docker/common/scripts/logs.sh"

# Make (or reuse) the wheelhouse of a requirements file and print its directory.
# With --app-only, the lines marked "# engine" are left out, as the vllm and trt
# Dockerfiles do with INSTALL_ENGINE=0. With --no-deps, pip takes exactly the listed
# pins and resolves nothing: for a complete lock the Dockerfile installs with --no-deps
# (docker/vllm/requirements-cpu.txt). Option lines of the file (--extra-index-url …) are
# left out: the host's pip configuration decides where the wheels come from.
# Globals:   WHEELHOUSE_CACHE, WHEELHOUSE_PIP, WHEELHOUSE_TIMEOUT (read)
# Arguments: [--app-only] [--no-deps] requirements_file
# Outputs:   the wheelhouse directory on stdout; progress on stderr
# Returns:   0 when it holds every wheel; 1 with a message otherwise
wheelhouse_ensure() {
  local app_only=0 pip_opts=()
  while [[ "${1:-}" == --* ]]; do
    case "$1" in
      --app-only) app_only=1 ;;
      --no-deps) pip_opts+=(--no-deps) ;;
      *)
        log_err "[wheels]" "unknown option '$1'; valid: --app-only, --no-deps"
        return 1
        ;;
    esac
    shift
  done
  local requirements="${1:-}"
  if [[ ! -r "${requirements}" ]]; then
    log_err "[wheels]" "requirements file '${requirements}' is not readable; pass a stack's requirements.txt"
    return 1
  fi
  local limit="${WHEELHOUSE_TIMEOUT:-1800}"
  if [[ ! "${limit}" =~ ^[1-9][0-9]*$ ]]; then
    log_err "[wheels]" "WHEELHOUSE_TIMEOUT '${limit}' is not valid; use a whole number of seconds above 0 (default 1800)"
    return 1
  fi
  local cache="${WHEELHOUSE_CACHE:-$(cd "${_WHEELHOUSE_LIB_DIR}/../.." && pwd)/.cache/wheelhouse}" wanted sum dir
  wanted="$(grep -vE '^[[:space:]]*(#|-|$)' "${requirements}")"
  ((app_only == 0)) || wanted="$(grep -v '# engine$' <<<"${wanted}")"
  sum="$(printf '%s\n' "${pip_opts[@]}" "${wanted}" | sha256sum)"
  dir="${cache}/${sum:0:16}"
  if [[ -f "${dir}/.complete" ]]; then
    log_info "[wheels]" "reusing the wheelhouse ${dir##*/} ($(find "${dir}" -name '*.whl' | wc -l) wheels) for ${requirements##*/}"
    printf '%s\n' "${dir}"
    return 0
  fi
  mkdir -p "${dir}" || return 1
  printf '%s\n' "${wanted}" >"${dir}/.requirements.txt"
  local start="${SECONDS}" log="${dir}/.pip.log"
  log_info "[wheels]" "downloading the wheels of ${requirements##*/} into ${dir} (the first time takes minutes)"
  if ! timeout "${limit}" "${WHEELHOUSE_PIP:-python3}" -m pip download --disable-pip-version-check -q \
    --only-binary=:all: "${pip_opts[@]}" -d "${dir}" -r "${dir}/.requirements.txt" >"${log}" 2>&1; then
    log_err "[wheels]" "pip download for ${requirements##*/} failed or ran past WHEELHOUSE_TIMEOUT=${limit}s; last lines of ${log}:"
    tail -n 5 "${log}" >&2
    return 1
  fi
  : >"${dir}/.complete"
  log_success "[wheels]" "wheelhouse ready in $((SECONDS - start))s: $(find "${dir}" -name '*.whl' | wc -l) wheels, $(du -sm "${dir}" | cut -f1) MiB"
  printf '%s\n' "${dir}"
}
