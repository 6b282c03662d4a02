#!/usr/bin/env bats
# scripts/demo.sh, the README's main command, on a real Docker engine: a full run that
# classifies a sentence and leaves nothing behind, a Ctrl-C during the build that also leaves
# nothing behind, bad settings refused before Docker is touched, and DEMO_STACK=vllm: the
# vllm stack's CPU flavor with a real vLLM, a streamed chat answer and a classification.
# The engine tests skip, with the reason, only when no engine can be started at all.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load '../bats/helpers/common'
load 'helpers/e2e'

setup_file() {
  local log="${BATS_FILE_TMPDIR}/engine-up.log"
  # The suite holds the engine for its whole run, so the demo reuses it (and leaves it up).
  if ! docker_engine_up 2>"${log}"; then
    E2E_NO_ENGINE="no Docker engine could be started: $(tail -n 3 "${log}" | tr '\n' ' ')"
    export E2E_NO_ENGINE
    return 0
  fi
  # made here, outside the per-test time limit, on a fresh host (the demo reuses them)
  base_image_ensure >/dev/null
  wheelhouse_ensure "${PROJECT_ROOT}/docker/tool/requirements.txt" >/dev/null
  wheelhouse_ensure --no-deps "${PROJECT_ROOT}/docker/vllm/requirements-cpu.txt" >/dev/null
  # DEMO_STACK=vllm builds vLLM's CPU image (its layers shared with vllm_cpu.bats's) and
  # waits for a real vLLM: minutes, not the default two (each demo run has its own timeout)
  export BATS_TEST_TIMEOUT=1800
}

teardown_file() {
  [[ -n "${E2E_NO_ENGINE:-}" ]] || docker_engine_stop
}

setup() {
  common_setup
  export DEMO_TAG="tool-demo-e2e-$$"
  # the demo's temp dirs (work dir, build context, tiny model, Olah's work dir) all go here
  export TMPDIR="${BATS_TEST_TMPDIR}/tmp"
  mkdir -p "${TMPDIR}"
}

# Orphaned Olah servers (parent pid 1), one pid a line, sorted.
orphan_mirrors() {
  ps -eo pid=,ppid=,args= | awk '$2 == 1 && /olah\.server/ { print $1 }' | sort
}

# What a demo run may leave behind: its containers, its image, its mirror (the serve process,
# or an Olah server orphaned since ORPHANS_BEFORE was taken), its temp dirs.
leftovers() {
  container_docker ps -aq --filter "label=tid-demo" ||
    true # reported by the output check below
  container_docker image ls -q "yap-text-api:${DEMO_TAG}"
  pgrep -f "${TMPDIR}" || true # none is the expected case
  comm -13 <(printf '%s\n' "${ORPHANS_BEFORE}") <(orphan_mirrors)
  # torch's own compile cache (made by any import of torch) is not the demo's
  find "${TMPDIR}" -mindepth 1 -maxdepth 1 ! -name 'torchinductor_*'
}

@test "demo: builds, serves, classifies; the last line is the cold start; twice; nothing is left" {
  need_engine
  ORPHANS_BEFORE="$(orphan_mirrors)"
  run --separate-stderr timeout 600 "${PROJECT_ROOT}/scripts/demo.sh"
  assert_success
  assert_line --index 0 'POST /v1/classify {"input": "The service was great and the food even better."}'
  run -0 "${VENV_PYTHON}" -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["model"], d["data"][0]["label"] in ("negative", "positive"))' "${lines[1]}"
  assert_output "demo/tiny-classifier True"
  run --separate-stderr timeout 600 "${PROJECT_ROOT}/scripts/demo.sh"
  assert_success
  assert_line --index 2 --regexp "^cold start: [0-9]+\.[0-9]s from docker run to the first 2xx /healthz \(yap-text-api:${DEMO_TAG}, total [0-9.]+s\)$"
  assert_equal "${#lines[@]}" 3
  [[ "${stderr}" == *"[demo] step 7/7"* && "${stderr}" == *"[engine] using the running engine"* ]]
  # the key was generated and used, but never printed
  [[ "${stderr}" != *"TEXT_API_KEY="* ]]
  run -0 leftovers
  assert_output ""
}

@test "demo: Ctrl-C during the build stops it with 130 and removes what it started" {
  need_engine
  ORPHANS_BEFORE="$(orphan_mirrors)"
  local err="${BATS_TEST_TMPDIR}/demo.err"
  # a fresh process group, so that the INT reaches the demo and its children as a Ctrl-C would
  setsid timeout 600 "${PROJECT_ROOT}/scripts/demo.sh" >/dev/null 2>"${err}" 3>&- &
  local pid=$! deadline=$((SECONDS + 300))
  until grep -q 'docker build yap-text-api' "${err}" || ((SECONDS >= deadline)); do sleep 0.2; done
  grep -q 'docker build yap-text-api' "${err}" || fail "the build never started: $(tail -n 5 "${err}")"
  kill -INT -- "-${pid}"
  local status=0
  wait "${pid}" || status=$?
  assert_equal "${status}" 130
  run -0 leftovers
  assert_output ""
}

@test "demo: DEMO_HEALTH_TIMEOUT=soon is refused with one line before anything starts" {
  make_stub docker
  make_stub dockerd
  DEMO_HEALTH_TIMEOUT=soon run --separate-stderr "${PROJECT_ROOT}/scripts/demo.sh"
  assert_failure 1
  assert_equal "${stderr}" "[demo] ✗ DEMO_HEALTH_TIMEOUT 'soon' is not valid; use a whole number of seconds above 0 (default 120; 600 with DEMO_STACK=vllm)"
  DEMO_STACK=trt run --separate-stderr "${PROJECT_ROOT}/scripts/demo.sh"
  assert_failure 1
  assert_equal "${stderr}" "[demo] ✗ DEMO_STACK 'trt' is not valid; use tool (default) or vllm"
  assert_equal "$(stub_call_count docker)" 0
  assert_equal "$(stub_call_count dockerd)" 0
  run -0 "${PROJECT_ROOT}/scripts/demo.sh" --help
  assert_line --index 0 "Usage:   scripts/demo.sh [--help]"
}

@test "demo: DEMO_STACK=vllm builds the CPU flavor, streams a chat answer from a real vLLM, classifies; nothing is left" {
  need_engine
  ORPHANS_BEFORE="$(orphan_mirrors)"
  export DEMO_TAG="vllm-cpu-demo-e2e-$$"
  DEMO_STACK=vllm run --separate-stderr timeout 1500 "${PROJECT_ROOT}/scripts/demo.sh"
  assert_success
  assert_line --index 0 --partial 'POST /v1/chat/completions {"stream": true, "messages": [{"role": "user", "content": "Tell me about the river and the city."}]}'
  # the answer's text (random words of a random model), then its summary from the usage chunk
  assert_line --regexp '^\(finish_reason (length|stop), prompt [0-9]+ \+ completion [0-9]+ tokens\)$'
  assert_line 'POST /v1/classify {"input": "The service was great and the food even better."}'
  assert_line --regexp "^cold start: [0-9]+\.[0-9]s from docker run to the first 2xx /healthz \(yap-text-api:${DEMO_TAG}, total [0-9.]+s\)$"
  [[ "${stderr}" == *"step 5/7"*"VLLM_DEVICE=cpu, DEPLOY_MODE=both"* ]]
  [[ "${stderr}" == *"[hub] published a tiny chat model as demo/tiny-llama"* ]]
  run -0 leftovers
  assert_output ""
}
