#!/usr/bin/env bats
# The tool image end to end on a real Docker engine: built once through docker/build.sh
# (from a copy of the working tree, --no-cache: a cold build) with a fake HF_TOKEN and a
# tiny model pinned to a tag of a local Olah mirror; then run, probed, stopped, rebuilt.
# The tests skip, with the reason, only when no engine can be started at all.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load '../bats/helpers/common'
load 'helpers/e2e'
load 'helpers/prometheus'

REPO_ID=e2e/tiny-classifier

setup_file() {
  e2e_setup_file
  [[ -z "${E2E_NO_ENGINE:-}" ]] || return 0
  local wheels
  wheels="$(wheelhouse_ensure "${PROJECT_ROOT}/docker/tool/requirements.txt")"
  # v1 is the pinned tag; main moves on to another commit afterwards
  E2E_TAG_SHA="$(hub_fixture_publish_tiny "${E2E_MIRRORS}" "${REPO_ID}" v1 0)"
  E2E_MAIN_SHA="$(hub_fixture_publish_tiny "${E2E_MIRRORS}" "${REPO_ID}" "" 1)"
  e2e_hub_start
  E2E_HF_TOKEN="hf_e2e_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  E2E_IMAGE="tid-e2e:tool-e2e-${E2E_RUN_ID}"
  E2E_BUILD_SETTINGS=(DEPLOY_MODE=tool IMAGE_REPO=tid-e2e "TAG=tool-e2e-${E2E_RUN_ID}" "TOOL_MODEL=${REPO_ID}"
    TOOL_MODEL_REVISION=v1 ALLOW_UNLISTED_MODELS=1 "HF_ENDPOINT=${HUB_FIXTURE_URL}" "PIP_WHEELHOUSE=${wheels}")
  printf '%s\n' "${E2E_BUILD_SETTINGS[@]}" >"${BATS_FILE_TMPDIR}/settings"
  local start="${EPOCHREALTIME}"
  HF_TOKEN="${E2E_HF_TOKEN}" e2e_build_kept build "${E2E_BUILD_SETTINGS[@]}" -- --no-cache --progress plain
  awk -v a="${start}" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.2f\n", b - a }' >"${BATS_FILE_TMPDIR}/build.seconds"
  export E2E_TAG_SHA E2E_MAIN_SHA E2E_HF_TOKEN E2E_IMAGE
}

teardown_file() {
  e2e_teardown_file "${E2E_IMAGE:-}"
}

setup() {
  e2e_setup
}

teardown() {
  prom_stop
}

# Start the suite's image on a free port and wait until /healthz answers 2xx.
# Globals:   PORT, CID (set)
# Arguments: [docker run options...]
start_healthy() {
  PORT="$(container_free_port)"
  CID="$(e2e_start "${E2E_IMAGE}" "${PORT}" "$@")"
  container_wait_2xx "http://127.0.0.1:${PORT}/healthz" 60 "${CID}"
}

@test "build: docker/build.sh with HF_TOKEN; the model comes through the mirror at the pinned tag" {
  need_engine
  run cat "${BATS_FILE_TMPDIR}/build.log"
  assert_equal "$(cat "${BATS_FILE_TMPDIR}/build.status")" 0
  assert_equal "$(cat "${BATS_FILE_TMPDIR}/build.out")" "${E2E_IMAGE}"
  assert_output --partial "[tool-model] downloading ${REPO_ID}@v1 (${E2E_TAG_SHA:0:12})"
  refute_output --partial "${E2E_HF_TOKEN}"
  [[ "${E2E_TAG_SHA}" != "${E2E_MAIN_SHA}" ]]
  run -0 container_docker run --rm --network host --entrypoint /opt/venv/bin/python "${E2E_IMAGE}" -c \
    'import json; m = json.load(open("/opt/models/tool/.download-manifest.json")); print(m["repo_id"], m["revision"], m["commit"], m["endpoint"])'
  assert_output "${REPO_ID} v1 ${E2E_TAG_SHA} ${HUB_FIXTURE_URL}"
}

@test "/app holds the runtime only: no build library or validator of the build host; the download steps --download-models runs; its bytecode" {
  need_engine
  run -0 container_docker run --rm --network host --entrypoint find "${E2E_IMAGE}" /app -type f -printf '%P\n'
  local listing="${output}"
  assert_line "scripts/main.sh"
  assert_line "src/server.py"
  assert_line "pyhelpers/gpu.py"
  refute_line --regexp '^common/scripts/build/|validate\.py$|value_rules\.py$|^download/|(^|/)tests/'
  # bytecode: exactly one .pyc for each .py, compiled in the image (none from the build host)
  assert_equal "$(grep '\.pyc$' <<<"${listing}" | sed -E 's|__pycache__/([^/]+)\.cpython-[0-9]+\.pyc$|\1.py|' | LC_ALL=C sort)" \
    "$(grep '\.py$' <<<"${listing}" | LC_ALL=C sort)"
  # /app/common/download is docker/common/download without validate.py: what --download-models runs
  assert_equal "$(grep -E '^common/download/[^/]+$' <<<"${listing}" | LC_ALL=C sort)" \
    "$(cd "${PROJECT_ROOT}/docker/common" && printf '%s\n' download/*.py | grep -vx download/validate.py | sed 's|^|common/|' | LC_ALL=C sort)"
  # /app/common/scripts is exactly the shared runtime libraries, docker/common/scripts/*.sh
  assert_equal "$(grep '^common/scripts/' <<<"${listing}" | LC_ALL=C sort)" \
    "$(cd "${PROJECT_ROOT}/docker/common" && printf '%s\n' scripts/*.sh | sed 's|^|common/|' | LC_ALL=C sort)"
}

@test "the bootstrap's src/config call loads the image's bytecode: nothing is compiled at start" {
  need_engine
  local compiled="code object from '?/app/.*\.py'?$" # python -v: the .py it had to compile
  run -0 --separate-stderr container_docker run --rm --network host --entrypoint /opt/venv/bin/python \
    "${E2E_IMAGE}" -v -m src.config --help
  local loaded="${stderr}"
  [[ "${loaded}" == *"code object from '/app/src/config/__pycache__/bootstrap."*".pyc'"* ]]
  run grep -E "${compiled}" <<<"${loaded}"
  assert_failure
  assert_output ""
  # the same call told to look for bytecode elsewhere compiles every module: what is counted
  run -0 --separate-stderr container_docker run --rm --network host -e PYTHONPYCACHEPREFIX=/tmp/pyc \
    --entrypoint /opt/venv/bin/python "${E2E_IMAGE}" -v -m src.config --help
  grep -E "code object from '?/app/src/config/bootstrap\.py'?$" <<<"${stderr}"
}

@test "token: nowhere in docker history, docker inspect, or any layer of docker save" {
  need_built build "the tool image"
  run -0 container_docker history --no-trunc "${E2E_IMAGE}"
  refute_output --partial "${E2E_HF_TOKEN}"
  run -0 container_docker inspect "${E2E_IMAGE}"
  refute_output --partial "${E2E_HF_TOKEN}"
  assert_output --partial "${REPO_ID}" # the inspect output does hold the build's labels and env
  local dir="${BATS_TEST_TMPDIR}/saved" layer layers=0 with_manifest=0
  mkdir -p "${dir}"
  CONTAINER_TIMEOUT=180 container_docker save -o "${dir}/image.tar" "${E2E_IMAGE}"
  tar -xf "${dir}/image.tar" -C "${dir}"
  run ! grep -qaF "${E2E_HF_TOKEN}" "${dir}/image.tar"
  for layer in "${dir}"/*/layer.tar; do
    layers=$((layers + 1))
    run ! grep -qaF "${E2E_HF_TOKEN}" "${layer}"
    # the grep does see inside layers: the model's manifest is in one of them
    if grep -qaF "\"commit\": \"${E2E_TAG_SHA}\"" "${layer}"; then with_manifest=$((with_manifest + 1)); fi
  done
  ((layers > 5))
  assert_equal "${with_manifest}" 1
}

@test "run: healthy within 60 s; /v1/classify answers with the key, 401 without; /livez 200" {
  need_built build "the tool image"
  start_healthy
  run -0 container_curl_key "http://127.0.0.1:${PORT}/v1/classify" -H 'Content-Type: application/json' \
    -d '{"input": ["a great movie", "a bad day"]}'
  assert_line --index 1 200
  run -0 "${VENV_PYTHON}" -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["model"], [x["label"] in ("negative", "positive") for x in d["data"]])' "${lines[0]}"
  assert_output "${REPO_ID} [True, True]"
  run -0 curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"input": "x"}' "http://127.0.0.1:${PORT}/v1/classify"
  assert_output 401
  run -0 curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT}/livez"
  assert_output 200
  # the key is passed by name: it is in no process's argv, inside or outside the container
  run -0 container_docker top "${CID}" -eo pid,args
  refute_output --partial "${TEXT_API_KEY}"
  run -0 container_docker logs "${CID}"
  refute_output --partial "${TEXT_API_KEY}"
}

@test "metrics: a real Prometheus scrapes /metrics (two workers); PromQL counts the requests sent" {
  need_built build "the tool image"
  start_healthy -e UVICORN_WORKERS=2 --read-only --tmpfs /tmp
  prom_start "127.0.0.1:${PORT}"
  local i deadline=$((SECONDS + 60))
  # /healthz answers from the first worker ready; the second may still be loading its model
  until curl -s -m 5 "http://127.0.0.1:${PORT}/metrics" |
    grep -qx 'text_inference_engine_state{engine="tool",state="ready"} 2.0'; do
    ((SECONDS < deadline)) || fail "the two workers were not both ready within 60 s"
    sleep 0.2
  done
  for i in 1 2 3; do
    # a connection each: either worker may answer, and /metrics sums both
    run -0 container_curl_key "http://127.0.0.1:${PORT}/v1/classify" -H 'Content-Type: application/json' \
      -d "{\"input\": [\"text ${i}\", \"more\"]}"
    assert_line --index 1 200
  done
  for i in 1 2; do
    run -0 curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
      -d '{"input": "x"}' "http://127.0.0.1:${PORT}/v1/classify"
    assert_output 401
  done
  local sent="${EPOCHREALTIME}"
  run -0 prom_query_after "${sent}" 'text_inference_requests_total{route="/v1/classify",method="POST",status="200"}'
  assert_output 3
  run -0 prom_query_after "${sent}" 'text_inference_requests_total{route="/v1/classify",status="401"}'
  assert_output 2
  run -0 prom_query_after "${sent}" 'text_inference_tool_batch_size_sum'
  assert_output 6
  run -0 prom_query_after "${sent}" 'text_inference_engine_state{engine="tool",state="ready"}'
  assert_output 2 # both workers
  run -0 prom_query_after "${sent}" 'count(text_inference_requests_total{route!~"/v1/classify|/healthz|/metrics"}) or vector(0)'
  assert_output 0
  prom_stop
}

@test "user: runs as uid 10001; also with --read-only and a tmpfs /tmp" {
  need_built build "the tool image"
  start_healthy --read-only --tmpfs /tmp
  run -0 container_docker exec "${CID}" id -u
  assert_output 10001
  run -0 container_docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "${CID}"
  assert_output true
  run ! container_docker exec "${CID}" touch /app/probe
  run -0 container_docker top "${CID}" -eo pid,uid,args
  refute_output --regexp "^ *[0-9]+ +0 "
  run -0 container_curl_key "http://127.0.0.1:${PORT}/v1/classify" -H 'Content-Type: application/json' -d '{"input": "fine"}'
  assert_line --index 1 200
}

@test "stop: docker stop ends it with 0 or 143 in under 10 s; no process is left before that" {
  need_built build "the tool image"
  start_healthy
  # while it serves: tini, main.sh and uvicorn (plus nothing else once warmup is done)
  local deadline=$((SECONDS + 10))
  until [[ "$(container_docker top "${CID}" -eo pid,args | tail -n +2 | wc -l)" == 3 ]] || ((SECONDS >= deadline)); do
    sleep 0.2
  done
  run -0 container_docker top "${CID}" -eo pid,args
  assert_equal "${#lines[@]}" 4
  assert_line --index 1 --partial tini
  assert_line --index 2 --partial /app/scripts/main.sh
  assert_line --index 3 --partial uvicorn
  local start="${EPOCHREALTIME}"
  run -0 container_docker stop -t 10 "${CID}"
  local took
  took="$(awk -v a="${start}" -v b="${EPOCHREALTIME}" 'BEGIN { print b - a }')"
  awk -v t="${took}" 'BEGIN { exit !(t < 10) }' || fail "docker stop took ${took}s"
  run -0 container_docker inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' "${CID}"
  [[ "${output}" == "0 false" || "${output}" == "143 false" ]] || fail "exit status: ${output}"
  # the server shut down itself (no KILL): uvicorn reported the end of its process
  run -0 container_docker logs "${CID}"
  assert_output --partial "Finished server process"
  # and nothing of it survives on the host (the container shares the host's network, not its pids)
  run pgrep -f -- "--port ${PORT}"
  assert_failure 1
}

@test "bad input: no TEXT_API_KEY exits 1 within 5 s; DEPLOY_MODE=bogus exits 1; --help exits 0" {
  need_built build "the tool image"
  local start="${SECONDS}"
  run -1 env -u TEXT_API_KEY timeout 30 "${DOCKER}" run --rm --network host "${E2E_IMAGE}"
  ((SECONDS - start <= 5)) || fail "took $((SECONDS - start))s"
  assert_line "[tool] ✗ no API key: set TEXT_API_KEY, or TEXT_API_KEY_FILE to a file holding it (e.g. a Docker or Kubernetes secret)"
  run -1 container_docker run --rm --network host -e DEPLOY_MODE=bogus -e TEXT_API_KEY "${E2E_IMAGE}"
  assert_line "[tool] ✗ DEPLOY_MODE 'bogus' is not valid; use one of: chat, tool, both (default both)"
  refute_output --partial "${TEXT_API_KEY}"
  # tini is the entrypoint and main.sh its command: options go to main.sh by name
  run --separate-stderr container_docker run --rm --network host "${E2E_IMAGE}" /app/scripts/main.sh --help
  assert_success
  assert_line --index 0 --partial "Usage:"
  assert_output --partial "TEXT_API_KEY"
  assert_equal "${stderr}" ""
}

@test "rebuild after a change under src/: the download step is CACHED, under 20% of the cold build" {
  need_built build "the tool image"
  local settings=()
  mapfile -t settings <"${BATS_FILE_TMPDIR}/settings"
  local marker="# e2e rebuild marker ${E2E_RUN_ID}"
  printf '%s\n' "${marker}" >>"${E2E_REPO}/src/server.py"
  container_docker image inspect -f '{{.Id}}' "${E2E_IMAGE}" >>"${BATS_FILE_TMPDIR}/images"
  local start="${EPOCHREALTIME}" cold took
  run --separate-stderr e2e_build "${settings[@]}" -- --progress plain
  took="$(awk -v a="${start}" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.2f", b - a }')"
  assert_success
  cold="$(cat "${BATS_FILE_TMPDIR}/build.seconds")"
  # the RUN of the models stage (the download) and the pip install came from the cache
  local step
  step="$(grep -E '^#[0-9]+ \[models [0-9]+/[0-9]+\] RUN ' <<<"${stderr}" | head -n 1 | cut -d' ' -f1)"
  [[ -n "${step}" ]] || fail "no models RUN step in the build log"
  grep -qxF "${step} CACHED" <<<"${stderr}" || fail "the download step ${step} was not CACHED"
  [[ "${stderr}" != *"[tool-model] downloading"* ]]
  awk -v t="${took}" -v c="${cold}" 'BEGIN { exit !(t < 0.2 * c) }' || fail "rebuild ${took}s vs cold ${cold}s (limit 20%)"
  # and the change is in the image
  run -0 container_docker run --rm --network host --entrypoint tail "${E2E_IMAGE}" -n 1 /app/src/server.py
  assert_output "${marker}"
}

@test "HEALTHCHECK: the image's own health check turns healthy" {
  need_built build "the tool image"
  start_healthy
  run -0 container_docker inspect -f '{{json .Config.Healthcheck.Test}}' "${E2E_IMAGE}"
  assert_output '["CMD","/opt/venv/bin/python","-m","pyhelpers.healthcheck"]' # /healthz on PORT
  run -0 e2e_wait_health "${CID}" healthy 60
  assert_output healthy
}
