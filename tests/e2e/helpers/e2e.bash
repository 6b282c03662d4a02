# shellcheck shell=bash
# Shared set-up of the end-to-end suites that build and run the stacks' images on a real
# Docker engine. Load it after helpers/common; call e2e_setup_file from setup_file and
# e2e_teardown_file from teardown_file.
#
# It gives each suite:
#   E2E_NO_ENGINE  the reason when no engine could be started (need_engine skips with it)
#   E2E_BASE_IMAGE the local debootstrap base (scripts/lib/base_image.sh)
#   E2E_REPO       a copy of the working tree (tracked and untracked, not ignored files), so
#                  a test may change a file without touching the repository
#   E2E_RUN_ID     a label value put on every container the suite starts (tid-e2e=<id>)
#   E2E_MIRRORS    a mirrors directory for the Olah Hub (hub_fixture_start serves it)
# and the helpers of scripts/lib/ (engine, base image, wheelhouse, hub fixture, container).

# shellcheck source=scripts/lib/base_image.sh
source "${PROJECT_ROOT}/scripts/lib/base_image.sh"
# shellcheck source=scripts/lib/wheelhouse.sh
source "${PROJECT_ROOT}/scripts/lib/wheelhouse.sh"
# shellcheck source=scripts/lib/hub_fixture.sh
source "${PROJECT_ROOT}/scripts/lib/hub_fixture.sh"
# shellcheck source=scripts/lib/container.sh
source "${PROJECT_ROOT}/scripts/lib/container.sh"

E2E_HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# Start or reuse the engine, make the base image and the repository copy. Leaves
# E2E_NO_ENGINE set (and returns 0) when no engine can be started.
e2e_setup_file() {
  local log="${BATS_FILE_TMPDIR}/engine-up.log"
  if ! docker_engine_up 2>"${log}"; then
    E2E_NO_ENGINE="no Docker engine could be started: $(tail -n 3 "${log}" | tr '\n' ' ')"
    export E2E_NO_ENGINE
    return 0
  fi
  E2E_BASE_IMAGE="$(base_image_ensure)"
  E2E_RUN_ID="${$}-${RANDOM}"
  E2E_REPO="${BATS_FILE_TMPDIR}/repo copy"
  E2E_MIRRORS="${BATS_FILE_TMPDIR}/mirrors"
  mkdir -p "${E2E_REPO}" "${E2E_MIRRORS}" "${BATS_FILE_TMPDIR}/docker-client"
  # common_setup resets PATH; build.sh finds the client that builds with BuildKit here
  ln -sfn "${DOCKER}" "${BATS_FILE_TMPDIR}/docker-client/docker"
  (cd "${PROJECT_ROOT}" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) |
    tar -xf - -C "${E2E_REPO}"
  export E2E_BASE_IMAGE E2E_RUN_ID E2E_REPO E2E_MIRRORS
}

# Remove the suite's containers and images (the base image and the build cache stay), stop
# the mirror and the engine when this suite started it. Images replaced by a rebuild are
# listed, one id a line, in $BATS_FILE_TMPDIR/images by the test that rebuilt them.
# Arguments: image...
e2e_teardown_file() {
  [[ -z "${E2E_NO_ENGINE:-}" ]] || return 0
  local ids=()
  mapfile -t ids < <(container_docker ps -aq --filter "label=tid-e2e=${E2E_RUN_ID}")
  container_remove "${ids[@]}"
  local images=("$@")
  [[ ! -r "${BATS_FILE_TMPDIR}/images" ]] || mapfile -t -O "${#images[@]}" images <"${BATS_FILE_TMPDIR}/images"
  ((${#images[@]} == 0)) || container_docker image rm -f "${images[@]}" >/dev/null 2>&1 ||
    true # an image a failed test never built
  HUB_FIXTURE_PID="$(cat "${BATS_FILE_TMPDIR}/hub.pid" 2>/dev/null)" || true # no mirror started
  hub_fixture_stop
  docker_engine_stop
}

# Start the Olah mirror for the whole suite (its pid is kept for e2e_teardown_file).
# Globals:   HUB_FIXTURE_URL (exported)
e2e_hub_start() {
  hub_fixture_start "${E2E_MIRRORS}" || return 1
  printf '%s\n' "${HUB_FIXTURE_PID}" >"${BATS_FILE_TMPDIR}/hub.pid"
  export HUB_FIXTURE_URL
}

# Skip the test when e2e_setup_file could not start any engine.
need_engine() {
  [[ -z "${E2E_NO_ENGINE:-}" ]] || skip "${E2E_NO_ENGINE}"
}

# Per-test setup of the suites that run an image: common_setup and a fresh random API key.
# Globals:   TEXT_API_KEY (exported)
e2e_setup() {
  common_setup
  TEXT_API_KEY="e2e-key-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  export TEXT_API_KEY
}

# Build with e2e_build in setup_file and keep the outcome for the tests: build.sh's stdout in
# BATS_FILE_TMPDIR/<name>.out, its log in <name>.log, its status in <name>.status (need_built
# reads them). A failed build is not setup_file's failure: each test that needs it says why.
# Arguments: name NAME=value... [-- docker build options...]
e2e_build_kept() {
  local name="$1" status=0
  shift
  e2e_build "$@" >"${BATS_FILE_TMPDIR}/${name}.out" 2>"${BATS_FILE_TMPDIR}/${name}.log" || status=$?
  printf '%s\n' "${status}" >"${BATS_FILE_TMPDIR}/${name}.status"
}

# Skip without an engine; fail with the last lines of the build log when an image that
# e2e_build_kept built in setup_file did not build.
# Arguments: name what (for the message, e.g. "the tool image")
need_built() {
  need_engine
  (($(cat "${BATS_FILE_TMPDIR}/$1.status") == 0)) ||
    fail "$2 did not build: $(grep -v '^#' "${BATS_FILE_TMPDIR}/$1.log" | tail -n 8)"
}

# Build through the repository copy's docker/build.sh with the air-gapped settings
# (host network, host CA bundle, local base, no push); extra settings as NAME=value arguments.
# Arguments: NAME=value... [-- docker build options...]
# Outputs:   build.sh's stdout (the image reference) and stderr (the build log)
e2e_build() {
  local settings=()
  while (($#)) && [[ "$1" != -- ]]; do
    settings+=("$1")
    shift
  done
  PATH="${BATS_FILE_TMPDIR}/docker-client:${PATH}" env PUSH=0 BUILD_NETWORK=host "BUILD_CA_BUNDLE=${E2E_HOST_CA_BUNDLE}" "BASE_IMAGE=${E2E_BASE_IMAGE}" \
    DOCKER_BUILD_TIMEOUT=900 "${settings[@]}" "${E2E_REPO}/docker/build.sh" "$@" </dev/null 3>&-
}

# Start a served container labelled for this suite; the key comes from TEXT_API_KEY.
# Arguments: image port [docker run options...]
# Outputs:   the container id on stdout
e2e_start() {
  local image="$1" port="$2"
  shift 2
  container_start "${image}" "${port}" --label "tid-e2e=${E2E_RUN_ID}" "$@"
}

# Poll a container's health status until it is the wanted one or the deadline passes.
# Arguments: container_id wanted timeout_s
# Outputs:   the last status seen on stdout
e2e_wait_health() {
  local cid="$1" wanted="$2" deadline=$((SECONDS + $3)) status=""
  while ((SECONDS < deadline)); do
    status="$(container_docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "${cid}")"
    [[ "${status}" != "${wanted}" ]] || break
    sleep 0.5
  done
  printf '%s\n' "${status}"
}
