# shellcheck shell=bash
# Start or reuse a Docker engine on a host with no running daemon and no registry.
#
# docker_engine_up picks a client that builds with BuildKit, then uses the
# first engine that answers: DOCKER_HOST, the default socket, or a private
# engine this library started earlier (in this process or another one).
# Only when none answers does it start a private dockerd (installing Debian's
# docker.io first when dockerd is missing), with its own data root, exec root,
# pid file and unix socket, no bridge and no iptables rules: builds and
# containers use `--network host`. docker_engine_stop, registered by the
# caller on EXIT, stops that private engine when no other live process still
# holds it; it never stops an engine it did not start.
#
# Configuration:
#   DOCKER_ENGINE_DATA_ROOT  images and build cache of the private engine
#                            (default: <repo>/.cache/docker-engine, kept between runs)
#   DOCKER_ENGINE_RUN_DIR    socket, pid file, exec root, log, leases (default:
#                            /tmp/tid-dockerd-<8 hex of the data root>; short, as a
#                            unix socket path is limited to about 100 bytes)
#   DOCKER_ENGINE_TIMEOUT    seconds to wait for the engine to answer or stop (default 60)
#   DOCKER_ENGINE_KEEP       1: docker_engine_stop leaves the private engine running
# Exported by docker_engine_up:
#   DOCKER            the client that works (a newer standalone client without buildx
#                     refuses BuildKit builds); a `docker` link to it also goes first on PATH
#   DOCKER_HOST       the engine's socket
#   DOCKER_BUILDKIT   1
#   DOCKER_ENGINE_PRIVATE  1 when the engine is the private one (this process holds a lease)
#
# A library: functions and constants only, no options set, safe under `set -u`.

_DOCKER_ENGINE_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/logs.sh
source "${_DOCKER_ENGINE_LIB_DIR}/../../docker/common/scripts/logs.sh"

# Seconds one `docker info` probe may take.
_DOCKER_ENGINE_PROBE_S=10

# Install the Debian packages that are missing (apt-get update only when a first try fails).
# Globals:   none
# Arguments: package...
# Outputs:   progress and errors on stderr
# Returns:   0 when all are installed, 127 when not root or apt-get fails
docker_engine_apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("${pkg}")
  done
  ((${#missing[@]} == 0)) && return 0
  if ((EUID != 0)); then
    log_err "[engine]" "missing Debian packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
    return 127
  fi
  log_info "[engine]" "installing Debian packages: ${missing[*]}"
  local apt=(timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}")
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null 2>&1 && return 0
  timeout 600 apt-get update -qq >/dev/null 2>&1 || true # the install below reports the failure
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null; then
    log_err "[engine]" "apt-get install ${missing[*]} failed; check the apt sources and run it by hand"
    return 127
  fi
}

# Choose the docker client: the first on PATH that builds with BuildKit without buildx
# (probed offline: such a client fails `DOCKER_BUILDKIT=1 docker build --help`), else
# Debian's /usr/bin/docker.
# Globals:   DOCKER (exported), DOCKER_BUILDKIT (exported), PATH (a link dir goes first when
#            the chosen client is not the first `docker` on PATH), DOCKER_ENGINE_RUN_DIR
# Returns:   0 when a client works, 1 when none does (no message: the caller reports)
_docker_engine_pick_client() {
  export DOCKER_BUILDKIT=1
  local candidates=() c chosen=""
  mapfile -t candidates < <(type -ap docker)
  candidates+=(/usr/bin/docker)
  for c in "${candidates[@]}"; do
    [[ -x "${c}" ]] || continue
    if timeout "${_DOCKER_ENGINE_PROBE_S}" "${c}" build --help >/dev/null 2>&1; then
      chosen="${c}"
      break
    fi
    log_debug "[engine]" "${c} refuses BuildKit builds (no buildx component); trying the next client"
  done
  [[ -n "${chosen}" ]] || return 1
  export DOCKER="${chosen}"
  if [[ "$(type -P docker)" != "${chosen}" ]]; then
    local link_dir
    link_dir="$(_docker_engine_run_dir)/client"
    mkdir -p "${link_dir}"
    ln -sfn "${chosen}" "${link_dir}/docker"
    export PATH="${link_dir}:${PATH}"
  fi
  log_debug "[engine]" "docker client: ${chosen}"
}

# Use a running engine or start the private one; see the file header.
# Globals:   DOCKER_HOST, DOCKER, DOCKER_BUILDKIT, DOCKER_ENGINE_PRIVATE (exported);
#            DOCKER_ENGINE_DATA_ROOT, DOCKER_ENGINE_RUN_DIR, DOCKER_ENGINE_TIMEOUT (read)
# Outputs:   progress on stderr
# Returns:   0 with an engine answering at DOCKER_HOST; 1 when the engine does not come
#            up (its log's tail is shown); 127 when docker.io cannot be installed
docker_engine_up() {
  export DOCKER_ENGINE_PRIVATE=""
  _docker_engine_check_timeout || return 1
  if ! _docker_engine_pick_client; then
    docker_engine_apt_install docker.io || return
    if ! _docker_engine_pick_client; then
      log_err "[engine]" "no docker client builds with DOCKER_BUILDKIT=1 (tried every docker on PATH and /usr/bin/docker); reinstall Debian's docker.io"
      return 127
    fi
  fi
  local host
  for host in "${DOCKER_HOST:-}" unix:///var/run/docker.sock; do
    [[ -n "${host}" ]] || continue
    if _docker_engine_answers "${host}"; then
      export DOCKER_HOST="${host}"
      log_info "[engine]" "using the running engine at ${host}"
      return 0
    fi
  done
  [[ -z "${DOCKER_HOST:-}" ]] ||
    log_warn "[engine]" "DOCKER_HOST '${DOCKER_HOST}' does not answer; using a private engine instead"
  type -P dockerd >/dev/null || docker_engine_apt_install docker.io || return
  local run
  run="$(_docker_engine_run_dir)"
  mkdir -p "${run}/leases"
  export DOCKER_HOST="unix://${run}/docker.sock"
  local status=0
  {
    if ! flock -w "${DOCKER_ENGINE_TIMEOUT:-60}" 9; then
      log_err "[engine]" "another process holds ${run}/lock for over ${DOCKER_ENGINE_TIMEOUT:-60}s"
      status=1
    elif _docker_engine_answers "${DOCKER_HOST}"; then
      log_info "[engine]" "reusing the private engine at ${DOCKER_HOST}"
    else
      _docker_engine_start "${run}" || status=$?
    fi
    ((status != 0)) || : >"${run}/leases/$$"
  } 9>"${run}/lock"
  ((status == 0)) || return "${status}"
  export DOCKER_ENGINE_PRIVATE=1
}

# Release this process's hold on the private engine; stop the engine when no other live
# process holds it (unless DOCKER_ENGINE_KEEP=1). Does nothing for an engine it did not start.
# Register it on EXIT: trap docker_engine_stop EXIT
# Globals:   DOCKER_ENGINE_PRIVATE, DOCKER_ENGINE_KEEP, DOCKER_ENGINE_TIMEOUT (read)
# Outputs:   progress on stderr
# Returns:   0; 1 when the engine would not stop
docker_engine_stop() {
  [[ "${DOCKER_ENGINE_PRIVATE:-}" == 1 ]] || return 0
  local run lease others=() status=0
  run="$(_docker_engine_run_dir)"
  [[ -d "${run}/leases" ]] || return 0
  {
    flock -w "${DOCKER_ENGINE_TIMEOUT:-60}" 9 || true # stopping late beats leaving it running
    rm -f "${run}/leases/$$"
    for lease in "${run}/leases"/*; do
      [[ -e "${lease}" ]] || continue
      if kill -0 "${lease##*/}" 2>/dev/null; then
        others+=("${lease##*/}")
      else
        rm -f "${lease}"
      fi
    done
    if ((${#others[@]} > 0)); then
      log_info "[engine]" "leaving the private engine running: still used by pid ${others[*]}"
    elif [[ "${DOCKER_ENGINE_KEEP:-}" == 1 ]]; then
      log_info "[engine]" "leaving the private engine running at ${DOCKER_HOST:-} (DOCKER_ENGINE_KEEP=1)"
    else
      _docker_engine_kill "${run}" || status=$?
    fi
  } 9>"${run}/lock"
  export DOCKER_ENGINE_PRIVATE=""
  return "${status}"
}

# Whether DOCKER_ENGINE_TIMEOUT is a positive whole number of seconds.
# Returns:   0 when valid or unset, 1 with a message otherwise
_docker_engine_check_timeout() {
  [[ "${DOCKER_ENGINE_TIMEOUT:-60}" =~ ^[1-9][0-9]*$ ]] && return 0
  log_err "[engine]" "DOCKER_ENGINE_TIMEOUT '${DOCKER_ENGINE_TIMEOUT}' is not valid; use a whole number of seconds above 0 (default 60)"
  return 1
}

# The private engine's run directory (DOCKER_ENGINE_RUN_DIR, or one named after the data root).
# Outputs:   the path on stdout
_docker_engine_run_dir() {
  if [[ -n "${DOCKER_ENGINE_RUN_DIR:-}" ]]; then
    printf '%s\n' "${DOCKER_ENGINE_RUN_DIR}"
    return 0
  fi
  local sum
  sum="$(printf '%s' "$(_docker_engine_data_root)" | sha256sum)"
  printf '/tmp/tid-dockerd-%s\n' "${sum:0:8}"
}

# The private engine's data root (DOCKER_ENGINE_DATA_ROOT, or the repo's .cache/docker-engine).
# Outputs:   the path on stdout
_docker_engine_data_root() {
  printf '%s\n' "${DOCKER_ENGINE_DATA_ROOT:-$(cd "${_DOCKER_ENGINE_LIB_DIR}/../.." && pwd)/.cache/docker-engine}"
}

# Whether an engine answers `docker info` at a host, within the probe limit.
# Arguments: host (unix://… or tcp://…)
# Returns:   0 when it answers
_docker_engine_answers() {
  DOCKER_HOST="$1" timeout "${_DOCKER_ENGINE_PROBE_S}" "${DOCKER:-docker}" info >/dev/null 2>&1
}

# Start dockerd in the background and wait until it answers.
# Arguments: run directory
# Returns:   0 when it answers; 1 otherwise (the engine is killed, its log tail shown)
_docker_engine_start() {
  local run="$1" data
  data="$(_docker_engine_data_root)"
  mkdir -p "${data}" "${run}/exec"
  local args=(
    --data-root "${data}" --exec-root "${run}/exec" --pidfile "${run}/dockerd.pid"
    --host "unix://${run}/docker.sock"
    --bridge=none --iptables=false --ip6tables=false
  )
  log_info "[engine]" "starting a private dockerd (data root ${data}, socket ${run}/docker.sock)"
  local start="${SECONDS}" deadline=$((SECONDS + ${DOCKER_ENGINE_TIMEOUT:-60}))
  # setsid: the engine outlives a Ctrl-C of the caller until docker_engine_stop runs;
  # fds 3 (bats) and 9 (the lock) are closed so that neither is held open by the engine.
  setsid dockerd "${args[@]}" </dev/null >>"${run}/dockerd.log" 2>&1 3>&- 9>&- &
  local pid=$!
  until _docker_engine_answers "${DOCKER_HOST}"; do
    if ! kill -0 "${pid}" 2>/dev/null || ((SECONDS >= deadline)); then
      log_err "[engine]" "dockerd did not answer within ${DOCKER_ENGINE_TIMEOUT:-60}s (DOCKER_ENGINE_TIMEOUT); last lines of ${run}/dockerd.log:"
      tail -n 5 "${run}/dockerd.log" >&2
      _docker_engine_kill "${run}" || true # already reporting the failure
      return 1
    fi
    sleep 0.2
  done
  log_success "[engine]" "private engine up in $((SECONDS - start))s at ${DOCKER_HOST}"
}

# Stop the private dockerd (TERM, then KILL after DOCKER_ENGINE_TIMEOUT) and remove its run files.
# Arguments: run directory
# Returns:   0 when it is gone, 1 when it survived KILL
_docker_engine_kill() {
  local run="$1" pid="" containerd=""
  [[ -r "${run}/dockerd.pid" ]] && pid="$(cat "${run}/dockerd.pid")"
  [[ -r "${run}/exec/containerd/containerd.pid" ]] && containerd="$(cat "${run}/exec/containerd/containerd.pid")"
  if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
    log_info "[engine]" "stopping the private engine (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true # it may have exited since the check
    local deadline=$((SECONDS + ${DOCKER_ENGINE_TIMEOUT:-60}))
    while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "${pid}" 2>/dev/null; then
      log_warn "[engine]" "dockerd ignored TERM for ${DOCKER_ENGINE_TIMEOUT:-60}s; killing it"
      kill -KILL "${pid}" 2>/dev/null || true # it may have exited since the check
      [[ -z "${containerd}" ]] || kill -KILL "${containerd}" 2>/dev/null || true # likewise
      sleep 0.5
    fi
    if kill -0 "${pid}" 2>/dev/null; then
      log_err "[engine]" "dockerd (pid ${pid}) is still running; stop it by hand: kill -KILL ${pid}"
      return 1
    fi
  fi
  rm -rf "${run:?}/docker.sock" "${run}/dockerd.pid" "${run}/leases" "${run}/client" 2>/dev/null ||
    true # leftovers in a temp dir are harmless
  return 0
}
