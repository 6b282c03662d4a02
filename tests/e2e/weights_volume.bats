#!/usr/bin/env bats
# Weights from a volume, end to end on a real Docker engine: the tool image built through
# docker/build.sh with BAKE_MODELS=0 (no model inside), `main.sh --download-models` filling a
# named volume through the local Olah mirror with HF_TOKEN from a mounted secret file, then the
# server on that volume mounted read-only. The tests skip, with the reason, only when no engine
# can be started at all.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load '../bats/helpers/common'
load 'helpers/e2e'

REPO_ID=e2e/tiny-weights

setup_file() {
  e2e_setup_file
  [[ -z "${E2E_NO_ENGINE:-}" ]] || return 0
  local wheels
  wheels="$(wheelhouse_ensure "${PROJECT_ROOT}/docker/tool/requirements.txt")"
  E2E_TAG_SHA="$(hub_fixture_publish_tiny "${E2E_MIRRORS}" "${REPO_ID}" v1 0)"
  e2e_hub_start
  E2E_HF_TOKEN="hf_e2e_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  # the secret file a Kubernetes Secret volume would hold (readable by the image's uid 10001)
  E2E_TOKEN_FILE="${BATS_FILE_TMPDIR}/hf-token"
  printf '%s\n' "${E2E_HF_TOKEN}" >"${E2E_TOKEN_FILE}"
  chmod 644 "${E2E_TOKEN_FILE}"
  E2E_IMAGE="tid-e2e:tool-weightless-${E2E_RUN_ID}"
  E2E_VOLUME="tid-e2e-weights-${E2E_RUN_ID}"
  HF_TOKEN="${E2E_HF_TOKEN}" e2e_build_kept build DEPLOY_MODE=tool IMAGE_REPO=tid-e2e \
    "TAG=tool-weightless-${E2E_RUN_ID}" "TOOL_MODEL=${REPO_ID}" TOOL_MODEL_REVISION=v1 \
    ALLOW_UNLISTED_MODELS=1 "HF_ENDPOINT=${HUB_FIXTURE_URL}" "PIP_WHEELHOUSE=${wheels}" BAKE_MODELS=0
  export E2E_TAG_SHA E2E_HF_TOKEN E2E_TOKEN_FILE E2E_IMAGE E2E_VOLUME
}

teardown_file() {
  local ids=()
  if [[ -z "${E2E_NO_ENGINE:-}" ]]; then
    # containers first (they hold the volumes), then the volumes this suite made
    mapfile -t ids < <(container_docker ps -aq --filter "label=tid-e2e=${E2E_RUN_ID}")
    container_remove "${ids[@]}"
    mapfile -t ids < <(container_docker volume ls -q --filter "name=${E2E_VOLUME:-none}")
    ((${#ids[@]} == 0)) || container_docker volume rm -f "${ids[@]}" >/dev/null
  fi
  e2e_teardown_file "${E2E_IMAGE:-}"
}

setup() {
  e2e_setup
}

# Run `main.sh --download-models` of the suite's image into a volume, with the token file
# mounted where the image reads it (HF_TOKEN_FILE's default) and the mirror as HF_ENDPOINT.
# Arguments: volume
# Outputs:   the container's output
download_into() {
  container_docker run --rm --network host --label "tid-e2e=${E2E_RUN_ID}" \
    -v "$1:/opt/models" -v "${E2E_TOKEN_FILE}:/run/secrets/hf_token:ro" \
    -e HF_ENDPOINT="${HUB_FIXTURE_URL}" "${E2E_IMAGE}" /app/scripts/main.sh --download-models 2>&1
}

# Make a volume of this suite and run the first download into it (bats `run`: its output
# and status are the test's to check).
# Globals:   VOLUME (set)
# Arguments: name suffix
new_filled_volume() {
  VOLUME="${E2E_VOLUME}-$1"
  container_docker volume create --label "tid-e2e=${E2E_RUN_ID}" "${VOLUME}" >/dev/null
  run -0 download_into "${VOLUME}"
}

# Print every file of a volume with its size and modification time, one a line.
# Arguments: volume
list_volume() {
  container_docker run --rm --network host -v "$1:/opt/models:ro" "${E2E_IMAGE}" \
    find /opt/models -type f -printf '%P %s %T@\n'
}

# Start the server on a volume mounted read-only, with a read-only root filesystem.
# Globals:   PORT, CID (set)
# Arguments: volume
start_on_volume() {
  PORT="$(container_free_port)"
  CID="$(e2e_start "${E2E_IMAGE}" "${PORT}" -v "$1:/opt/models:ro" --read-only --tmpfs /tmp)"
}

@test "build: BAKE_MODELS=0 bakes no model, labels the image, and its start without a volume says what to do" {
  need_built build "the weightless tool image"
  run cat "${BATS_FILE_TMPDIR}/build.log"
  assert_output --partial "BAKE_MODELS=0: no model in the image"
  refute_output --partial "[tool-model] downloading"
  refute_output --partial "${E2E_HF_TOKEN}"
  run -0 container_docker run --rm --network host "${E2E_IMAGE}" bash -c 'stat -c %u /opt/models; ls -A /opt/models'
  assert_output 10001
  run -0 container_docker inspect -f '{{index .Config.Labels "text-inference.bake-models"}}' "${E2E_IMAGE}"
  assert_output 0
  run -1 container_docker run --rm --network host -e TEXT_API_KEY "${E2E_IMAGE}"
  assert_output --partial "[startup] ✗ tool model directory TOOL_MODEL_PATH='/opt/models/tool' does not exist"
  assert_output --partial "main.sh --download-models"
}

@test "download: fills a volume through the mirror at the pinned tag; again: nothing changes; token nowhere" {
  need_built build "the weightless tool image"
  new_filled_volume a
  assert_output --partial "[tool-model] downloading ${REPO_ID}@v1 (${E2E_TAG_SHA:0:12})"
  refute_output --partial "${E2E_HF_TOKEN}"
  run -0 container_docker run --rm --network host -v "${VOLUME}:/opt/models:ro" "${E2E_IMAGE}" \
    cat /opt/models/tool/.download-manifest.json
  assert_output --partial "\"commit\": \"${E2E_TAG_SHA}\""
  assert_output --partial "\"endpoint\": \"${HUB_FIXTURE_URL}\""
  refute_output --partial "${E2E_HF_TOKEN}"
  local before
  before="$(list_volume "${VOLUME}")"
  [[ "${before}" == *"tool/model.safetensors "* ]] || fail "no weights in the volume: ${before}"
  run -0 download_into "${VOLUME}"
  assert_output --partial "${REPO_ID}@v1 (${E2E_TAG_SHA:0:12}) is already in /opt/models/tool"
  refute_output --partial "downloading ${REPO_ID}"
  assert_equal "$(list_volume "${VOLUME}")" "${before}"
  # the image holds no token either: in no layer's history, nor in its configuration
  run -0 container_docker history --no-trunc "${E2E_IMAGE}"
  refute_output --partial "${E2E_HF_TOKEN}"
  run -0 container_docker inspect "${E2E_IMAGE}"
  refute_output --partial "${E2E_HF_TOKEN}"
}

@test "run: the server on the read-only volume is healthy and classifies; a corrupt file stops it by name" {
  need_built build "the weightless tool image"
  new_filled_volume b
  start_on_volume "${VOLUME}"
  container_wait_2xx "http://127.0.0.1:${PORT}/healthz" 60 "${CID}"
  run -0 container_curl_key "http://127.0.0.1:${PORT}/v1/classify" -H 'Content-Type: application/json' \
    -d '{"input": ["a great movie"]}'
  assert_line --index 1 200
  assert_line --index 0 --partial "\"model\":\"${REPO_ID}\""
  run ! container_docker exec "${CID}" touch /opt/models/tool/probe
  container_remove "${CID}"
  # a write cut short (bytes added or lost) changes the size the manifest records
  container_docker run --rm --network host -v "${VOLUME}:/opt/models" "${E2E_IMAGE}" \
    bash -c 'head -c 100 /opt/models/tool/model.safetensors >>/opt/models/tool/model.safetensors'
  start_on_volume "${VOLUME}"
  run -1 container_wait_2xx "http://127.0.0.1:${PORT}/healthz" 60 "${CID}"
  run -0 container_docker wait "${CID}"
  assert_output 1
  run -0 container_docker logs "${CID}"
  assert_output --partial "[startup] ✗ tool model in /opt/models/tool does not match its download manifest: "
  assert_output --partial "'model.safetensors' has"
  refute_output --partial "${TEXT_API_KEY}"
  # the next download repairs it
  run -0 download_into "${VOLUME}"
  assert_output --partial "[tool-model] downloading ${REPO_ID}@v1"
  start_on_volume "${VOLUME}"
  container_wait_2xx "http://127.0.0.1:${PORT}/healthz" 60 "${CID}"
}
