#!/usr/bin/env bats
# The vllm and trt stacks end to end on a real Docker engine, without GPUs or engines:
# built through docker/build.sh on the local base with INSTALL_ENGINE=0 (the stacks' build
# argument for scanning and CI: no vLLM, no TensorRT-LLM), a tiny chat model (and for trt a
# fake pre-built engine for sm90) from a local Olah mirror; run with a stub nvidia-smi
# (mounted, first on PATH) and tests/apps/fake_openai.py as CHAT_ENGINE_CMD.
# The tests skip, with the reason, only when no engine can be started at all.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load '../bats/helpers/common'
load 'helpers/e2e'

TRT_LABEL=sm90_trt-llm-0.17.0_cuda12.8
CONTAINER_PATH=/e2e/stub:/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

setup_file() {
  e2e_setup_file
  [[ -z "${E2E_NO_ENGINE:-}" ]] || return 0
  local vllm_wheels trt_wheels py="${VENV_PYTHON}" trt_src="${BATS_FILE_TMPDIR}/trt repo"
  # one wheelhouse per stack: their app pins differ (trt's follow tensorrt_llm's metadata)
  vllm_wheels="$(wheelhouse_ensure --app-only "${PROJECT_ROOT}/docker/vllm/requirements.txt")"
  trt_wheels="$(wheelhouse_ensure --app-only "${PROJECT_ROOT}/docker/trt/requirements.txt")"
  hub_fixture_publish_tiny "${E2E_MIRRORS}" e2e/tiny-chat >/dev/null
  # the trt repo: tokenizer and config at the top, one engine folder per label
  HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error "${py}" "${PROJECT_ROOT}/scripts/lib/tiny_model.py" "${trt_src}" >/dev/null
  mkdir -p "${trt_src}/trt-llm/engines/${TRT_LABEL}"
  printf 'not a real engine\n' >"${trt_src}/trt-llm/engines/${TRT_LABEL}/rank0.engine"
  printf '{"build_config": {"max_seq_len": 256}}\n' >"${trt_src}/trt-llm/engines/${TRT_LABEL}/config.json"
  printf '{"sm_arch": "sm90", "trt_llm_version": "0.17.0"}\n' >"${trt_src}/trt-llm/engines/${TRT_LABEL}/build_metadata.json"
  rm -f "${trt_src}/model.safetensors"
  timeout 120 "${py}" "${PROJECT_ROOT}/scripts/lib/hub_mirror.py" publish --mirrors "${E2E_MIRRORS}" \
    --repo e2e/tiny-trt --from "${trt_src}" >/dev/null
  e2e_hub_start
  E2E_VLLM_IMAGE="tid-e2e:vllm-e2e-${E2E_RUN_ID}"
  E2E_TRT_IMAGE="tid-e2e:trt-e2e-${E2E_RUN_ID}"
  local common=(IMAGE_REPO=tid-e2e DEPLOY_MODE=chat ALLOW_UNLISTED_MODELS=1 "HF_ENDPOINT=${HUB_FIXTURE_URL}")
  local engine_off=(-- --build-arg INSTALL_ENGINE=0 --progress plain)
  e2e_build_kept vllm "${common[@]}" "PIP_WHEELHOUSE=${vllm_wheels}" ENGINE=vllm CHAT_MODEL=e2e/tiny-chat \
    "TAG=vllm-e2e-${E2E_RUN_ID}" "${engine_off[@]}"
  e2e_build_kept trt "${common[@]}" "PIP_WHEELHOUSE=${trt_wheels}" ENGINE=trt CHAT_MODEL=e2e/tiny-trt \
    "TRT_ENGINE_LABEL=${TRT_LABEL}" "TAG=trt-e2e-${E2E_RUN_ID}" "${engine_off[@]}"
  # stub nvidia-smi answering from the bats fixtures; the container mounts one of these dirs
  local gpu
  for gpu in h100 a100; do
    mkdir -p "${BATS_FILE_TMPDIR}/stub-${gpu}"
    cp "${PROJECT_ROOT}/tests/bats/fixtures/nvidia-smi/${gpu}.csv" "${BATS_FILE_TMPDIR}/stub-${gpu}/gpu.csv"
    printf '#!/bin/sh\ncat /e2e/stub/gpu.csv\n' >"${BATS_FILE_TMPDIR}/stub-${gpu}/nvidia-smi"
    chmod -R a+rX "${BATS_FILE_TMPDIR}/stub-${gpu}"
    chmod a+x "${BATS_FILE_TMPDIR}/stub-${gpu}/nvidia-smi"
  done
  export E2E_VLLM_IMAGE E2E_TRT_IMAGE
}

teardown_file() {
  e2e_teardown_file "${E2E_VLLM_IMAGE:-}" "${E2E_TRT_IMAGE:-}"
}

setup() {
  e2e_setup
}

# Start a stack image with the stub GPU and the fake chat engine.
# Globals:   PORT, CID (set)
# Arguments: image gpu (h100|a100)
start_stack() {
  PORT="$(container_free_port)"
  CID="$(e2e_start "$1" "${PORT}" -e "PATH=${CONTAINER_PATH}" -e "CHAT_ENGINE_PORT=$(container_free_port)" \
    -e "CHAT_ENGINE_CMD=python3 /e2e/apps/fake_openai.py" \
    -v "${BATS_FILE_TMPDIR}/stub-$2:/e2e/stub:ro" -v "${PROJECT_ROOT}/tests/apps:/e2e/apps:ro")"
}

@test "vllm: INSTALL_ENGINE=0 builds without vLLM; stub GPU and engine: healthy, chat answers" {
  need_built vllm "the vllm image"
  run -0 container_docker run --rm --network host --entrypoint /opt/venv/bin/python "${E2E_VLLM_IMAGE}" \
    -c 'import importlib.util as u; print([u.find_spec(m) is None for m in ("vllm", "torch")])'
  assert_output "[True, True]"
  start_stack "${E2E_VLLM_IMAGE}" h100
  run -0 e2e_wait_health "${CID}" healthy 90
  assert_output healthy
  run -0 container_docker logs "${CID}"
  assert_output --partial "H100"
  run -0 container_curl_key "http://127.0.0.1:${PORT}/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "e2e/tiny-chat", "messages": [{"role": "user", "content": "hi"}]}'
  assert_line --index 1 200
}

@test "trt: INSTALL_ENGINE=0 builds with the sm90 engine; stub H100 and engine: healthy" {
  need_built trt "the trt image"
  run -0 container_docker run --rm --network host --entrypoint cat "${E2E_TRT_IMAGE}" \
    /opt/engines/trt-chat/build_metadata.json
  assert_output --partial '"sm_arch": "sm90"'
  start_stack "${E2E_TRT_IMAGE}" h100
  run -0 e2e_wait_health "${CID}" healthy 90
  assert_output healthy
  run -0 container_docker logs "${CID}"
  assert_output --partial "[trt] ✓ engine sm90 x1 matches"
}

@test "trt: an sm90 engine on a stub A100 (sm80) stops the container with the mismatch message" {
  need_built trt "the trt image"
  start_stack "${E2E_TRT_IMAGE}" a100
  local deadline=$((SECONDS + 30))
  while [[ "$(container_docker inspect -f '{{.State.Running}}' "${CID}")" == true ]] && ((SECONDS < deadline)); do
    sleep 0.2
  done
  run -0 container_docker inspect -f '{{.State.Running}} {{.State.ExitCode}}' "${CID}"
  assert_output "false 1"
  run -0 container_docker logs "${CID}"
  assert_output --partial "[trt] ✗ GPU ARCHITECTURE MISMATCH: engine sm90, this GPU sm80"
  refute_output --partial "Started server process"
}
