#!/usr/bin/env bats
# A local model directory baked into the tool image on a real Docker engine: one build
# through docker/build.sh with TOOL_MODEL=<absolute host path> (no Hub, no mirror; --no-cache: the
# copy of the model is logged only when its layer is built, and the same tiny model from an earlier
# run would hit the cache), then run.
# The image must serve that model, and know it only as local:<basename>: the host path is in
# no build argument, environment variable, label or history entry.
# The tests skip, with the reason, only when no engine can be started at all.
# shellcheck disable=SC2030,SC2031 # each test runs in its own subshell

load '../bats/helpers/common'
load 'helpers/e2e'

LABELS=calm,stormy,sunny

setup_file() {
  e2e_setup_file
  [[ -z "${E2E_NO_ENGINE:-}" ]] || return 0
  local wheels
  wheels="$(wheelhouse_ensure "${PROJECT_ROOT}/docker/tool/requirements.txt")"
  E2E_HOST_DIR="${BATS_FILE_TMPDIR}/host models/weather-tiny"
  timeout 300 "${VENV_PYTHON}" "${PROJECT_ROOT}/scripts/lib/tiny_model.py" "${E2E_HOST_DIR}" \
    --labels "${LABELS}" --seed 3 >/dev/null
  E2E_IMAGE="tid-e2e:tool-local-${E2E_RUN_ID}"
  e2e_build_kept build DEPLOY_MODE=tool IMAGE_REPO=tid-e2e "TAG=tool-local-${E2E_RUN_ID}" \
    "TOOL_MODEL=${E2E_HOST_DIR}" "PIP_WHEELHOUSE=${wheels}" -- --no-cache --progress plain
  export E2E_HOST_DIR E2E_IMAGE
}

teardown_file() {
  e2e_teardown_file "${E2E_IMAGE:-}"
}

setup() {
  e2e_setup
}

@test "build: the local directory goes in through the context, known only as local:weather-tiny" {
  need_built build "the local-model image"
  assert_equal "$(cat "${BATS_FILE_TMPDIR}/build.out")" "${E2E_IMAGE}"
  run cat "${BATS_FILE_TMPDIR}/build.log"
  assert_output --partial "copying the local tool model 'weather-tiny'"
  assert_output --partial "[tool-model] copying the local model local:weather-tiny"
  run -0 container_docker inspect "${E2E_IMAGE}"
  assert_output --partial '"TOOL_MODEL=local:weather-tiny"'
  assert_output --partial '"text-inference.tool-model": "local:weather-tiny"'
  refute_output --partial "host models"
  run -0 container_docker history --no-trunc "${E2E_IMAGE}"
  refute_output --partial "host models"
  run -0 container_docker run --rm --entrypoint /opt/venv/bin/python "${E2E_IMAGE}" -c \
    'import json, os; m = json.load(open("/opt/models/tool/.download-manifest.json")); print(m["local_source"], m["commit"], os.path.exists("/build"))'
  assert_output "local:weather-tiny None False"
}

@test "run: /v1/classify answers with the local model's own labels" {
  need_built build "the local-model image"
  local port cid
  port="$(container_free_port)"
  cid="$(e2e_start "${E2E_IMAGE}" "${port}")"
  container_wait_2xx "http://127.0.0.1:${port}/healthz" 60 "${cid}"
  run -0 container_curl_key "http://127.0.0.1:${port}/v1/classify" -H 'Content-Type: application/json' \
    -d '{"input": ["rain again", "clear skies"]}'
  assert_line --index 1 200
  run -0 "${VENV_PYTHON}" -c 'import json, sys; d = json.loads(sys.argv[1]); print(sorted({x["label"] for x in d["data"]} | set(sys.argv[2].split(","))))' "${lines[0]}" "${LABELS}"
  assert_output "['calm', 'stormy', 'sunny']"
}
