#!/usr/bin/env bats
# docker/common/scripts/build/docker.sh: require_docker and ensure_docker_login.
# shellcheck disable=SC2030,SC2031 # each test changes the environment in its own subshell

load 'helpers/common'
load 'fixtures/build/helpers'

setup() {
  common_setup
  build_setup
  set -u
  # shellcheck source=docker/common/scripts/build/docker.sh
  source "${PROJECT_ROOT}/docker/common/scripts/build/docker.sh"
}

@test "Debian's client without buildx: BuildKit built into the engine, DOCKER_BUILDKIT=1" {
  require_docker 2>"${BATS_TEST_TMPDIR}/err"
  assert_equal "${DOCKER_BUILDKIT}" 1
  assert_equal "$(cat "${BATS_TEST_TMPDIR}/err")" \
    "[build] BuildKit built into the Docker engine 20.10.24 (DOCKER_BUILDKIT=1, client 20.10.24, no buildx)"
}

@test "buildx plugin present: BuildKit through buildx, whatever the client version" {
  DOCKER_STUB_BUILDX=1 DOCKER_STUB_CLIENT=27.3.1 run --separate-stderr require_docker
  assert_success
  assert_equal "${stderr}" "[build] BuildKit through the buildx plugin (github.com/docker/buildx v0.12.1); engine 20.10.24"
}

@test "a client from 23.0 without buildx: its own message, status 1" {
  DOCKER_STUB_CLIENT=27.3.1 run --separate-stderr require_docker
  assert_failure 1
  [[ "${stderr}" == *"BuildKit is not usable: no buildx plugin, and docker client '27.3.1' with engine '20.10.24'"* ]]
  [[ "${stderr}" == *"install the buildx plugin"* ]]
}

@test "no docker CLI on PATH: status 127 and how to install it" {
  rm "${STUB_DIR}/docker"
  # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
  run -127 --separate-stderr bash -c 'source "$1"; PATH="$2"; require_docker' _ \
    "${PROJECT_ROOT}/docker/common/scripts/build/docker.sh" "${STUB_DIR}"
  assert_failure 127
  [[ "${stderr}" == *"docker CLI not found on PATH; install Docker"* ]]
}

@test "engine down: its own message naming DOCKER_HOST" {
  DOCKER_STUB_DAEMON=down DOCKER_HOST=unix:///nowhere.sock run --separate-stderr require_docker
  assert_failure 1
  assert_equal "${stderr}" "[build] ✗ cannot reach the Docker engine (DOCKER_HOST=unix:///nowhere.sock); start dockerd or set DOCKER_HOST"
}

@test "engine hangs: stopped after DOCKER_TIMEOUT, its own message, no process left" {
  local start=${SECONDS}
  DOCKER_STUB_DAEMON=hang DOCKER_TIMEOUT=1 run --separate-stderr require_docker
  assert_failure 1
  [[ "${stderr}" == *"the Docker engine did not answer within DOCKER_TIMEOUT=1s"* ]]
  ((SECONDS - start < 10))
  run pgrep -f "sleep 31.5"
  assert_failure 1
}

@test "a build whose engine is down never calls docker build, and leaves no context" {
  build_env_tool
  DOCKER_STUB_DAEMON=down run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_equal "$(grep -c '^build ' "${STUB_DIR}/docker.calls")" 0
  assert_equal "$(build_leftover_contexts)" ""
}

@test "ensure_docker_login: skipped with PUSH=0, even without credentials" {
  PUSH=0 run --separate-stderr ensure_docker_login myuser/app:tool-x
  assert_success
  assert_equal "$(stub_call_count docker)" 0
}

@test "ensure_docker_login --force logs in again although config.json holds the registry" {
  mkdir -p "${HOME}/.docker"
  printf '{"auths": {"localhost:5000": {}}}\n' >"${HOME}/.docker/config.json"
  PUSH=1 run --separate-stderr ensure_docker_login localhost:5000/app:tool-x
  assert_success
  assert_equal "$(stub_call_count docker)" 0
  PUSH=1 DOCKER_USERNAME=u DOCKER_TOKEN=t run --separate-stderr ensure_docker_login --force localhost:5000/app:tool-x
  assert_success
  assert_equal "$(cat "${STUB_DIR}/docker.calls")" "login --username u --password-stdin localhost:5000"
  assert_equal "$(cat "${STUB_DIR}/docker.login.stdin")" "t"
}
