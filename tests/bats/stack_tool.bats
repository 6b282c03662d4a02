#!/usr/bin/env bats
# The tool stack's scripts (docker/tool/scripts) run in the assembled image layout
# with stub nvidia-smi programs, a baked tool model with a manifest and a stub uvicorn.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'
load 'helpers/stack'

setup_file() {
  stack_assemble tool
}

setup() {
  stack_setup
  TOOL_MODEL_PATH="$(stack_bake_model tool)"
  export TOOL_MODEL=ProsusAI/finbert TOOL_MODEL_PATH
  export TEXT_API_KEY="${STACK_SECRET}"
  MAIN="${APP_ROOT}/scripts/main.sh"
}

@test "--help prints the tool usage without bootstrap, GPU probe or server" {
  stack_gpu h100
  run -0 --separate-stderr "${MAIN}" --help
  assert_line --index 0 "Usage:   main.sh [--help | --explain | --download-models | COMMAND [ARGS...]]"
  assert_output --partial "docker/tool/README.md"
  assert_equal "${stderr}" ""
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=0"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "no TEXT_API_KEY: status 1, one clear line, no server" {
  unset TEXT_API_KEY
  run -1 --separate-stderr "${MAIN}"
  assert_equal "$(grep -c '✗' <<<"${stderr}")" 1
  [[ "${stderr}" == *"[tool] ✗ no API key: set TEXT_API_KEY, or TEXT_API_KEY_FILE"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "CPU-only host: supported with one warning, no GPU settings, one Python process, server started once" {
  run -0 --separate-stderr "${MAIN}"
  assert_served_without_secret
  # no NVML library, no nvidia-smi: the NVML helper never starts; src/config is the one Python
  assert_equal "$(cut -d' ' -f1-2 "${STUB_DIR}/python3.calls")" "-m src.config"
  [[ "${stderr}" == *"[gpu] ⚠ no NVIDIA GPU found (NVML helper: no NVIDIA driver library (libnvidia-ml.so.1) found; nvidia-smi: not installed)"* ]]
  [[ "${stderr}" == *"[tool] ⚠ no GPU visible: the tool model runs on the CPU"* ]]
  [[ "${stderr}" == *"[tool] ✓ ready to start: DEPLOY_MODE=tool, GPU: Unknown x0, tool=ProsusAI/finbert"* ]]
  assert_equal "$(server_env DEPLOY_MODE) $(server_env TOOL_GPU_FRAC) $(server_env GPU_COUNT)" "tool 0.90 0"
  assert_equal "$(server_env TORCH_CUDA_ARCH_LIST) $(server_env PYTORCH_ALLOC_CONF)" "<unset> <unset>"
  assert_equal "$(server_env HF_HUB_OFFLINE)" 1
  assert_equal "$(cat "${STACK_RECORDS}/uvicorn.calls")" \
    "src.server:app --host 127.0.0.1 --port 8000 --workers 1 --app-dir ${APP_ROOT} --http src.protocol:BoundedHttp --log-config ${APP_ROOT}/pyhelpers/uvicorn_log.json"
}

@test "tool-only may run several uvicorn workers (each loads its own model)" {
  UVICORN_WORKERS=3 run -0 --separate-stderr "${MAIN}"
  assert_equal "$(cat "${STACK_RECORDS}/uvicorn.calls")" \
    "src.server:app --host 127.0.0.1 --port 8000 --workers 3 --app-dir ${APP_ROOT} --http src.protocol:BoundedHttp --log-config ${APP_ROOT}/pyhelpers/uvicorn_log.json"
}

@test "H100: GPU defaults, one GPU probe; A100: CUDA_DEVICE_MAX_CONNECTIONS; user values win" {
  stack_gpu h100
  run -0 --separate-stderr "${MAIN}"
  assert_equal "$(server_env TORCH_CUDA_ARCH_LIST) $(server_env PYTORCH_ALLOC_CONF)" "9.0 expandable_segments:True"
  assert_equal "$(gpu_probe_calls)" "nvml=1 smi=1"
  [[ "${stderr}" != *"runs on the CPU"* ]]
  rm -f "${STACK_RECORDS}"/* "${STUB_DIR}"/nvidia-smi*
  stack_gpu a100
  TORCH_CUDA_ARCH_LIST=8.6 TOOL_GPU_FRAC=0.3 run -0 --separate-stderr "${MAIN}"
  assert_equal "$(server_env TORCH_CUDA_ARCH_LIST) $(server_env CUDA_DEVICE_MAX_CONNECTIONS)" "8.6 1"
  assert_equal "$(server_env TOOL_GPU_FRAC)" 0.3
}

@test "deploy modes: chat and both are refused by the tool image; a bad fraction stops the start" {
  DEPLOY_MODE=both run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[tool] ✗ DEPLOY_MODE 'both' is not served by the tool image"* ]]
  DEPLOY_MODE=chat run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"DEPLOY_MODE 'chat' is not served by the tool image"* ]]
  DEPLOY_MODE=" TOOL " run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"DEPLOY_MODE ' TOOL ' is not valid; use one of: chat, tool, both"* ]]
  DEPLOY_MODE=tool run -0 --separate-stderr "${MAIN}"
  rm -f "${STACK_RECORDS}"/*
  TOOL_GPU_FRAC=1.5 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[tool] ✗ TOOL_GPU_FRAC='1.5' is not valid; expected a number between 0.01 and 1.0"* ]]
  unset TOOL_MODEL
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"TOOL_MODEL is not set but DEPLOY_MODE=tool serves a tool model"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "the manifest check runs APP_ROOT's pyhelpers, never one in the working directory" {
  local evil="${BATS_TEST_TMPDIR}/evil dir"
  mkdir -p "${evil}/pyhelpers"
  : >"${evil}/pyhelpers/__init__.py"
  printf '%s\n' 'print("everything matches")' >"${evil}/pyhelpers/manifest.py"
  printf 'x' >>"${TOOL_MODEL_PATH}/config.json"
  cd "${evil}"
  PYTHONPATH="${evil}" run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[tool] ✗ tool model in ${TOOL_MODEL_PATH} does not match its download manifest: "*"'config.json' has"* ]]
}

@test "a manifest whose sizes disagree, a stray *.incomplete, or no model directory stops the start" {
  printf 'x' >>"${TOOL_MODEL_PATH}/config.json"
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[tool] ✗ tool model in ${TOOL_MODEL_PATH} does not match its download manifest: "*"'config.json' has"* ]]
  rm -rf "${TOOL_MODEL_PATH}"
  TOOL_MODEL_PATH="$(stack_bake_model tool)"
  touch "${TOOL_MODEL_PATH}/model.safetensors.incomplete"
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"holds a half-finished download (model.safetensors.incomplete)"* ]]
  TOOL_MODEL_PATH="${MODELS}/nowhere" run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"tool model directory TOOL_MODEL_PATH='${MODELS}/nowhere' does not exist"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "no download manifest: an error in the baked directory, a warning in one the user set" {
  rm "${TOOL_MODEL_PATH}/.download-manifest.json"
  run -0 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[tool] ⚠ tool model in ${TOOL_MODEL_PATH} (TOOL_MODEL_PATH, set by you) has no download manifest"* ]]
  assert_served_without_secret
  # The same directory as the image's own (its ENV, recorded in image.env): an error.
  cp -R "${APP_ROOT}" "${BATS_TEST_TMPDIR}/image app"
  printf 'TOOL_MODEL_PATH=%s\n' "${TOOL_MODEL_PATH}" >"${BATS_TEST_TMPDIR}/image app/image.env"
  rm -f "${STACK_RECORDS}"/*
  APP_ROOT="${BATS_TEST_TMPDIR}/image app" run -1 --separate-stderr "${BATS_TEST_TMPDIR}/image app/scripts/main.sh"
  [[ "${stderr}" == *"[tool] ✗ tool model in ${TOOL_MODEL_PATH} has no download manifest (.download-manifest.json), which the build writes with every baked download"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "CA_BUNDLE exported as REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE; HF_HUB_OFFLINE=0 kept" {
  printf 'a bundle\n' >"${BATS_TEST_TMPDIR}/ca.pem"
  CA_BUNDLE="${BATS_TEST_TMPDIR}/ca.pem" HF_HUB_OFFLINE=0 run -0 --separate-stderr "${MAIN}"
  assert_equal "$(server_env REQUESTS_CA_BUNDLE)|$(server_env SSL_CERT_FILE)|$(server_env CURL_CA_BUNDLE)" \
    "${BATS_TEST_TMPDIR}/ca.pem|${BATS_TEST_TMPDIR}/ca.pem|${BATS_TEST_TMPDIR}/ca.pem"
  assert_equal "$(server_env HF_HUB_OFFLINE)" 0
}

@test "a command instead of the server gets the bootstrapped environment, no key needed" {
  unset TEXT_API_KEY
  stack_gpu l40s
  # shellcheck disable=SC2016 # expanded by the container's bash, not here
  run -0 --separate-stderr "${MAIN}" bash -c 'printf "%s %s %s\n" "${TOOL_GPU_FRAC}" "${GPU_SM_ARCH}" "${HF_HUB_OFFLINE}"'
  assert_output "0.90 sm89 1"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "--explain on an H100: sources of each setting, key hidden, nothing started" {
  stack_gpu h100
  TOOL_GPU_FRAC=0.5 run -0 --separate-stderr "${MAIN}" --explain
  assert_explained TOOL_GPU_FRAC 0.5 user
  assert_explained TORCH_CUDA_ARCH_LIST 9.0 "gpu preset"
  assert_explained GPU_SM_ARCH sm90 "gpu preset"
  assert_explained HF_HUB_OFFLINE 1 default
  assert_explained TEXT_API_KEY '***' user
  refute_output --partial "${STACK_SECRET}"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "timers from src/config: the HEALTHCHECK's give-up, the last-resort kill after the drain; one that cuts it stops the start" {
  unset WARMUP_MAX_WAIT
  SHUTDOWN_GRACE_S=20 run -0 --separate-stderr "${MAIN}" --explain
  assert_explained WARMUP_MAX_WAIT 120 default
  assert_explained SHUTDOWN_GRACE_S 20 user
  assert_explained ENGINE_STOP_TIMEOUT 3 default
  assert_explained SERVER_STOP_TIMEOUT 24 derived
  SHUTDOWN_GRACE_S=20 SERVER_STOP_TIMEOUT=10 run -1 --separate-stderr "${MAIN}"
  assert_equal "$(grep -c '✗' <<<"${stderr}")" 2 # the reason, then that the bootstrap failed
  [[ "${stderr}" == *"[tool] ✗ SERVER_STOP_TIMEOUT='10' would kill the server before its stop ends: SHUTDOWN_GRACE_S 20 + ENGINE_STOP_TIMEOUT 3 + 1 s to exit = 24 s; raise it to at least 24"* ]] || fail "${stderr}"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "--download-models: no API key, GPU probe or model check; the stack's download steps run, their status is main.sh's" {
  unset TEXT_API_KEY
  stack_gpu h100
  stack_download_stub 3
  printf 'a bundle\n' >"${BATS_TEST_TMPDIR}/ca.pem"
  TOOL_MODEL_PATH="${MODELS}/empty volume/tool" CA_BUNDLE="${BATS_TEST_TMPDIR}/ca.pem" HF_TOKEN="${STACK_SECRET}" \
    run -3 --separate-stderr "${MAIN}" --download-models
  assert_equal "$(cat "${STUB_DIR}/download-python.calls")" "${APP_ROOT}/common/download/models.py tool"
  assert_equal "$(cat "${STACK_RECORDS}/download.env")" \
    "DEPLOY_CHAT=0 DEPLOY_TOOL=1 HF_HUB_OFFLINE=<unset> REQUESTS_CA_BUNDLE=${BATS_TEST_TMPDIR}/ca.pem"
  assert_equal "${stderr}" "[tool] downloading the models of DEPLOY_MODE=tool from the Hub"
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=0"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "--download-models: HF_HUB_OFFLINE on, a deploy mode the image does not serve, or no DOWNLOAD_PYTHON stops it before any download" {
  stack_download_stub 0
  HF_HUB_OFFLINE=True run -1 --separate-stderr "${MAIN}" --download-models
  assert_equal "${stderr%%$'\n'*}" "[tool] ✗ HF_HUB_OFFLINE=True forbids the download of --download-models; unset it for this container (the server's own container keeps it)"
  DEPLOY_MODE=both run -1 --separate-stderr "${MAIN}" --download-models
  [[ "${stderr}" == *"DEPLOY_MODE 'both' is not served by the tool image"* ]]
  assert_equal "$(stub_call_count download-python)" 0
  DOWNLOAD_PYTHON="${BATS_TEST_TMPDIR}/no python" run -127 --separate-stderr "${MAIN}" --download-models
  assert_equal "${stderr}" "[tool] ✗ DOWNLOAD_PYTHON '${BATS_TEST_TMPDIR}/no python' is not a program in this image; unset it (python3 on PATH) or name a Python with huggingface_hub 2.x"
}
