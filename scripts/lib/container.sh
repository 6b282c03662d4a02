# shellcheck shell=bash
# Run and probe a served container from the host (demo, e2e suite, benchmarks). Containers
# use `--network host` (the private engine has no bridge), so each gets a free PORT.
# The API key never reaches an argv: docker reads TEXT_API_KEY from its environment
# (`-e TEXT_API_KEY`), curl reads the header from stdin (`-K -`).
#
# Configuration:
#   DOCKER            the docker client (default: docker on PATH; docker_engine_up sets it)
#   CONTAINER_TIMEOUT seconds one docker call may take (default 60)
#
# A library: functions and constants only, no options set, safe under `set -u`.

_CONTAINER_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/logs.sh
source "${_CONTAINER_LIB_DIR}/../../docker/common/scripts/logs.sh"

# Print a TCP port free on 127.0.0.1 right now.
# Outputs:   the port on stdout
container_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run docker under CONTAINER_TIMEOUT.
# Arguments: docker arguments...
# Returns:   docker's status (124 on timeout)
container_docker() {
  timeout "${CONTAINER_TIMEOUT:-60}" "${DOCKER:-docker}" "$@"
}

# Start a served container in the background with the API key from the environment.
# Globals:   TEXT_API_KEY (read; passed by name only)
# Arguments: image port [docker run options...]
# Outputs:   the container id on stdout
# Returns:   docker's status
container_start() {
  local image="$1" port="$2"
  shift 2
  container_docker run -d --network host -e PORT="${port}" -e TEXT_API_KEY "$@" "${image}"
}

# Poll a URL until it answers 2xx, the container stops, or the deadline passes. The URL every
# 50 ms; whether the container still runs once a second: a `docker inspect` costs the machine
# many times a curl, and a cold-start benchmark measures the container while this polls.
# Arguments: url timeout_s [container_id]
# Outputs:   a message on stderr when it fails
# Returns:   0 on the first 2xx; 1 otherwise
container_wait_2xx() {
  local url="$1" limit="$2" cid="${3:-}" code deadline polls=0
  deadline=$((SECONDS + limit))
  while ((SECONDS < deadline)); do
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "${url}")" || true # no answer yet: code 000
    [[ "${code}" == 2?? ]] && return 0
    if [[ -n "${cid}" ]] && ((polls++ % 20 == 19)) &&
      [[ "$(container_docker inspect -f '{{.State.Running}}' "${cid}" 2>/dev/null)" != true ]]; then
      log_err "[container]" "container ${cid:0:12} stopped before ${url} answered 2xx; its last lines:"
      container_docker logs --tail 5 "${cid}" >&2 2>&1 || true # it may be gone already
      return 1
    fi
    sleep 0.05
  done
  log_err "[container]" "${url} did not answer 2xx within ${limit}s (last status ${code:-none})"
  return 1
}

# Send a request with the API key from the environment (given to curl on stdin, never in argv).
# Globals:   TEXT_API_KEY (read)
# Arguments: url [curl options...]
# Outputs:   the body, then a line with the HTTP status, on stdout
# Returns:   curl's status
container_curl_key() {
  local url="$1"
  shift
  printf 'header = "Authorization: Bearer %s"\n' "${TEXT_API_KEY:-}" |
    curl -s -m 30 -K - -w '\n%{http_code}\n' "$@" "${url}"
}

# Remove containers (forced), ignoring ones that are gone. Nothing to do without arguments.
# Arguments: container id...
# Returns:   0
container_remove() {
  (($#)) || return 0
  container_docker rm -f "$@" >/dev/null 2>&1 || true # already removed ones are fine
}
