# shellcheck shell=bash
# Every call the build makes to the Docker CLI, each under a time limit:
# checking the CLI, the engine and BuildKit; logging in; building; pushing.
#
# Long calls (build, push) run in the background while the shell waits, so an
# INT or TERM reaches the caller's trap at once; BUILD_CHILD_PID names the
# running call so that the trap can stop it.
#
# A library: functions and constants only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/logs.sh
source "$(dirname "${BASH_SOURCE[0]}")/../logs.sh"

# Docker Hub's key in the client's config.json.
DOCKER_HUB_AUTH_KEY="https://index.docker.io/v1/"

# Check that the docker CLI exists, that the engine answers within
# DOCKER_TIMEOUT seconds, and that BuildKit is usable: through the buildx
# plugin, or (a client older than 23.0, like Debian's docker.io) through the
# BuildKit built into the engine with DOCKER_BUILDKIT=1.
# Globals:   DOCKER_TIMEOUT, DOCKER_HOST (read); DOCKER_BUILDKIT (exported)
# Outputs:   which BuildKit it uses, or why none is usable, on stderr
# Returns:   0 when usable, 127 when the CLI is missing, 1 otherwise
require_docker() {
  local limit="${DOCKER_TIMEOUT:-30}" server client rc=0
  if ! command -v docker >/dev/null 2>&1; then
    log_err "[build]" "docker CLI not found on PATH; install Docker (Debian: apt-get install docker.io)"
    return 127
  fi
  server="$(timeout "${limit}" docker version --format '{{.Server.Version}}' 2>/dev/null)" || rc=$?
  if ((rc == 124)); then
    log_err "[build]" "the Docker engine did not answer within DOCKER_TIMEOUT=${limit}s (DOCKER_HOST=${DOCKER_HOST:-default socket}); check that dockerd is running"
    return 1
  elif ((rc != 0)) || [[ -z "${server}" ]]; then
    log_err "[build]" "cannot reach the Docker engine (DOCKER_HOST=${DOCKER_HOST:-default socket}); start dockerd or set DOCKER_HOST"
    return 1
  fi
  export DOCKER_BUILDKIT=1
  local buildx
  if buildx="$(timeout "${limit}" docker buildx version 2>/dev/null)" && [[ -n "${buildx}" ]]; then
    log_info "[build]" "BuildKit through the buildx plugin (${buildx}); engine ${server}"
    return 0
  fi
  # Without buildx only the version matters; an empty answer fails the test below.
  client="$(timeout "${limit}" docker version --format '{{.Client.Version}}' 2>/dev/null || true)"
  if [[ "${client}" =~ ^([0-9]+)\. ]] && ((BASH_REMATCH[1] < 23)) && [[ "${server}" =~ ^([0-9]+)\.([0-9]+) ]] &&
    ((BASH_REMATCH[1] > 18 || (BASH_REMATCH[1] == 18 && BASH_REMATCH[2] >= 9))); then
    log_info "[build]" "BuildKit built into the Docker engine ${server} (DOCKER_BUILDKIT=1, client ${client}, no buildx)"
    return 0
  fi
  log_err "[build]" "BuildKit is not usable: no buildx plugin, and docker client '${client:-unknown}' with engine '${server}' cannot build with DOCKER_BUILDKIT=1 alone (clients from 23.0 need buildx); install the buildx plugin (Debian: docker-buildx)"
  return 1
}

# Print the registry host of an image reference; nothing for Docker Hub.
# Arguments: image
_docker_registry_of() {
  local first="${1%%/*}"
  if [[ "$1" == */* && ("${first}" == *.* || "${first}" == *:* || "${first}" == localhost) ]]; then
    printf '%s\n' "${first}"
  fi
}

# Log in to the image's registry when pushing, with DOCKER_TOKEN or
# DOCKER_PASSWORD given on stdin only (never in argv). Skipped when PUSH=0, and
# when the client's config already holds the registry (unless --force).
# Globals:   PUSH, DOCKER_USERNAME, DOCKER_TOKEN, DOCKER_PASSWORD, DOCKER_CONFIG, DOCKER_TIMEOUT
# Arguments: [--force] image
# Returns:   0 when logged in or skipped, 1 when a login is needed and fails
ensure_docker_login() {
  local force=0
  if [[ "${1:-}" == --force ]]; then
    force=1
    shift
  fi
  local image="$1" registry config secret output rc=0
  if [[ "${PUSH:-1}" != 1 ]]; then
    log_info "[build]" "not pushing (PUSH=${PUSH:-}); no registry login"
    return 0
  fi
  registry="$(_docker_registry_of "${image}")"
  config="${DOCKER_CONFIG:-${HOME:-}/.docker}/config.json"
  if ((force == 0)) && [[ -r "${config}" ]] && grep -qF "\"${registry:-${DOCKER_HUB_AUTH_KEY}}\"" "${config}"; then
    log_info "[build]" "already logged in to ${registry:-Docker Hub}"
    return 0
  fi
  secret="${DOCKER_TOKEN:-${DOCKER_PASSWORD:-}}"
  if [[ -z "${secret}" || -z "${DOCKER_USERNAME:-}" ]]; then
    log_err "[build]" "not logged in to ${registry:-Docker Hub}; set DOCKER_USERNAME and DOCKER_TOKEN (or DOCKER_PASSWORD), run docker login first, or build only with PUSH=0"
    return 1
  fi
  local args=(login --username "${DOCKER_USERNAME}" --password-stdin)
  if [[ -n "${registry}" ]]; then args+=("${registry}"); fi
  output="$(printf '%s' "${secret}" | timeout "${DOCKER_TIMEOUT:-30}" docker "${args[@]}" 2>&1)" || rc=$?
  if ((rc != 0)); then
    output="${output//"${secret}"/***}"
    log_err "[build]" "docker login to ${registry:-Docker Hub} as ${DOCKER_USERNAME} failed (status ${rc}): ${output//$'\n'/ }"
    return 1
  fi
  log_success "[build]" "logged in to ${registry:-Docker Hub} as ${DOCKER_USERNAME}"
}

# Run one docker command under a time limit in the background and wait for
# it, so that a signal reaches the caller's trap at once.
# Globals:   BUILD_CHILD_PID (written while it runs)
# Arguments: seconds docker-arguments...
# Returns:   the command's status (124 on timeout)
_docker_run_waited() {
  local limit="$1" rc=0
  shift
  timeout "${limit}" docker "$@" </dev/null &
  BUILD_CHILD_PID=$!
  wait "${BUILD_CHILD_PID}" || rc=$?
  BUILD_CHILD_PID=""
  return "${rc}"
}

# Run `docker build` with BUILD_ARGS over a context directory.
# Globals:   BUILD_ARGS, DOCKER_BUILD_TIMEOUT (read)
# Arguments: context_dir image
# Returns:   0 on success, 1 with a message otherwise
docker_build_image() {
  local context="$1" image="$2" rc=0
  log_section "[build]" "docker build ${image}"
  _docker_run_waited "${DOCKER_BUILD_TIMEOUT:-14400}" build "${BUILD_ARGS[@]}" "${context}" || rc=$?
  if ((rc == 124)); then
    log_err "[build]" "docker build of ${image} ran past DOCKER_BUILD_TIMEOUT=${DOCKER_BUILD_TIMEOUT:-14400}s and was stopped"
    return 1
  elif ((rc != 0)); then
    log_err "[build]" "docker build of ${image} failed (status ${rc}); the lines above say why"
    return 1
  fi
  log_success "[build]" "built ${image}"
}

# Push an image; when the push fails, log in again (--force) and retry once.
# Globals:   DOCKER_PUSH_TIMEOUT (read), and what ensure_docker_login reads
# Arguments: image
# Returns:   0 when pushed, 1 with a message naming the image otherwise
docker_push_image() {
  local image="$1" limit="${DOCKER_PUSH_TIMEOUT:-7200}"
  log_section "[build]" "docker push ${image}"
  if _docker_run_waited "${limit}" push "${image}"; then
    log_success "[build]" "pushed ${image}"
    return 0
  fi
  log_warn "[build]" "push of ${image} failed; logging in again and retrying once"
  if ! ensure_docker_login --force "${image}"; then
    log_err "[build]" "push of ${image} failed and the fresh login failed too, so it was not retried; fix the credentials (DOCKER_USERNAME, DOCKER_TOKEN) and push the image built locally: docker push ${image}"
    return 1
  fi
  if _docker_run_waited "${limit}" push "${image}"; then
    log_success "[build]" "pushed ${image} (second attempt)"
    return 0
  fi
  log_err "[build]" "push of ${image} failed twice; check DOCKER_USERNAME, DOCKER_TOKEN and that the repository exists and accepts pushes (the image is built locally: docker push ${image})"
  return 1
}
