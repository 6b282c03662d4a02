#!/usr/bin/env bats
# The vllm stack's scripts (docker/vllm/scripts) run in the assembled image layout
# with stub nvidia-smi programs, baked models with manifests and a stub uvicorn.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'
load 'helpers/stack'

setup_file() {
  stack_assemble vllm
}

setup() {
  stack_vllm_setup
  MAIN="${APP_ROOT}/scripts/main.sh"
}

# Start the stack (stub server) with a GPU fixture; the server's environment is recorded.
# Arguments: fixture (h100, a100, l40s, rtx4090, two-gpus, none)
start_on() {
  stack_gpu "$1"
  run --separate-stderr "${MAIN}"
}

@test "--help prints the vllm usage without bootstrap, GPU probe or server" {
  stack_gpu h100
  run -0 --separate-stderr "${MAIN}" --help
  assert_line --index 0 "Usage:   main.sh [--help | --explain | --download-models | COMMAND [ARGS...]]"
  assert_output --partial "docker/vllm/README.md"
  assert_equal "${stderr}" ""
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=0"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "no TEXT_API_KEY: status 1, one clear line, no server" {
  unset TEXT_API_KEY
  stack_gpu h100
  run -1 --separate-stderr "${MAIN}"
  assert_equal "$(grep -c '✗' <<<"${stderr}")" 1
  [[ "${stderr}" == *"[vllm] ✗ no API key: set TEXT_API_KEY, or TEXT_API_KEY_FILE"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "H100: fp8 KV cache, batching for 80 GiB, TP 1, arch list; one GPU probe, two Python processes; secret unprinted" {
  start_on h100
  assert_success
  assert_served_without_secret
  assert_equal "$(server_env KV_DTYPE)" fp8
  assert_equal "$(server_env MAX_NUM_SEQS)/$(server_env MAX_NUM_BATCHED_TOKENS)" 256/16384
  assert_equal "$(server_env TENSOR_PARALLEL_SIZE)" 1
  assert_equal "$(server_env TORCH_CUDA_ARCH_LIST)" 9.0
  assert_equal "$(server_env PYTORCH_ALLOC_CONF)" expandable_segments:True
  assert_equal "$(server_env ENGINE)/$(server_env DEPLOY_MODE)" vllm/both
  assert_equal "$(server_env CHAT_GPU_FRAC)/$(server_env TOOL_GPU_FRAC)" 0.70/0.20
  assert_equal "$(server_env SERVED_MODEL_NAME)/$(server_env CHAT_ENGINE_PORT)" Qwen/Qwen3-8B/8001
  assert_equal "$(server_env HF_HUB_OFFLINE)" 1
  assert_equal "$(server_env CHAT_ATTENTION_BACKEND)" "<unset>"
  assert_equal "$(server_env CHAT_QUANTIZATION)" "<unset>"
  assert_equal "$(gpu_probe_calls)" "nvml=1 smi=1"
  [[ "${stderr}" == *"[vllm] ✓ ready to start: DEPLOY_MODE=both, GPU: NVIDIA H100 80GB HBM3 x1 (sm90), chat=Qwen/Qwen3-8B tool=ProsusAI/finbert"* ]]
  # two Python processes before the server: the NVML probe and src/config (settings, checks,
  # model facts, manifests); uvicorn's launcher is checked without running it
  assert_equal "$(cut -d' ' -f1-2 "${STUB_DIR}/python3.calls")" $'-m pyhelpers.gpu\n-m src.config'
  assert_equal "$(wc -l <"${STACK_RECORDS}/uvicorn.calls")" 1

}

@test "A100, L40S, RTX 4090, no GPU with an engine of your own: KV cache dtype, batching and allocator presets" {
  local row fixture want
  export CHAT_ENGINE_CMD="my-engine --port 8001"
  for row in \
    "a100=auto 256 16384 8.0 expandable_segments:True 1" \
    "l40s=fp8 128 8192 8.9 expandable_segments:True <unset>" \
    "rtx4090=fp8 64 4096 8.9 <unset> <unset>" \
    "none=<unset> <unset> <unset> <unset> <unset> <unset>"; do
    fixture="${row%%=*}"
    want="${row#*=}"
    rm -f "${STUB_DIR}/nvidia-smi" "${STACK_RECORDS}"/*
    start_on "${fixture}"
    assert_success
    assert_equal "${fixture}: $(server_env KV_DTYPE) $(server_env MAX_NUM_SEQS) $(server_env MAX_NUM_BATCHED_TOKENS) $(server_env TORCH_CUDA_ARCH_LIST) $(server_env PYTORCH_ALLOC_CONF) $(server_env CUDA_DEVICE_MAX_CONNECTIONS)" \
      "${fixture}: ${want}"
    assert_equal "$(server_env TENSOR_PARALLEL_SIZE)" 1
  done
  [[ "${stderr}" == *"[gpu] ⚠ no NVIDIA GPU found"* ]]
}

@test "no GPU with vLLM's CUDA build deployed: one line naming --gpus and VLLM_DEVICE=cpu, no server; tool-only starts" {
  start_on none
  assert_failure 1
  assert_equal "$(grep -c '✗' <<<"${stderr}")" 2 # the reason, then lifecycle's "bootstrap failed"
  [[ "${stderr}" == *"[vllm] ✗ no GPU is visible, and this image runs vLLM's CUDA build (VLLM_DEVICE=cuda): run it with --gpus all (NVIDIA Container Toolkit), or build the CPU flavor (docker/build.sh with VLLM_DEVICE=cpu)"* ]]
  [[ "${stderr}" != *Traceback* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  DEPLOY_MODE=tool start_on none
  assert_success
  assert_equal "$(server_env DEPLOY_MODE)" tool
}

@test "VLLM_DEVICE=cpu: no GPU probe, no GPU share; CPU presets for vLLM's CPU build; summary says CPU" {
  export VLLM_DEVICE=cpu
  start_on none
  assert_success
  assert_served_without_secret
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=0"
  assert_equal "$(server_env VLLM_DEVICE)" cpu
  assert_equal "$(server_env CHAT_KV_CACHE_BYTES)/$(server_env CHAT_ENFORCE_EAGER)" 2G/1
  assert_equal "$(server_env CHAT_GPU_FRAC)/$(server_env TOOL_GPU_FRAC)" "<unset>/<unset>"
  assert_equal "$(server_env GPU_COUNT)/$(server_env TORCH_CUDA_ARCH_LIST)/$(server_env MAX_NUM_SEQS)" "<unset>/<unset>/<unset>"
  [[ "${stderr}" == *"[vllm] ✓ ready to start: DEPLOY_MODE=both, CPU, chat=Qwen/Qwen3-8B tool=ProsusAI/finbert"* ]]
  [[ "${stderr}" != *"[gpu]"* && "${stderr}" != *⚠* ]]
  # user values win over the CPU presets
  rm -f "${STACK_RECORDS}"/*
  CHAT_KV_CACHE_BYTES=512M CHAT_ENFORCE_EAGER=0 start_on none
  assert_success
  assert_equal "$(server_env CHAT_KV_CACHE_BYTES)/$(server_env CHAT_ENFORCE_EAGER)" 512M/0
}

@test "VLLM_DEVICE=cpu with Docker's 64 MiB /dev/shm: one line naming --shm-size, no server; fine without vLLM's engine" {
  export VLLM_DEVICE=cpu
  stack_small_shm 64
  start_on none
  assert_failure 1
  [[ "${stderr}" == *"[vllm] ✗ /dev/shm has 64 MiB free (of 64); vLLM's CPU engine needs 192 MiB there for its worker's message queue: run the container with --shm-size=1g (or --ipc=host)"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  DEPLOY_MODE=tool start_on none
  assert_success
  CHAT_ENGINE_CMD="my-engine" start_on none
  assert_success
}

@test "VLLM_DEVICE=cpu with a GPU visible: one warning naming it, and the CPU build still starts" {
  export VLLM_DEVICE=cpu
  start_on h100
  assert_success
  assert_equal "$(grep -c '⚠' <<<"${stderr}")" 1
  [[ "${stderr}" == *"[vllm] ⚠ a GPU is visible (NVIDIA H100 80GB HBM3), but this image runs vLLM on the CPU (VLLM_DEVICE=cpu) and leaves it unused; for the GPU, run an image built with VLLM_DEVICE=cuda"* ]]
  assert_equal "$(server_env CHAT_GPU_FRAC)/$(server_env GPU_COUNT)" "<unset>/<unset>"
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=1"
}

@test "the image's VLLM_DEVICE (image.env) cannot be changed at run time: one line, no server, no probe" {
  printf 'VLLM_DEVICE=cpu\nENGINE=vllm\n' >"${APP_ROOT}/image.env"
  export VLLM_DEVICE=cuda
  start_on h100
  rm -f "${APP_ROOT}/image.env"
  assert_failure 1
  [[ "${stderr}" == *"[vllm] ✗ VLLM_DEVICE 'cuda' is not this image's device (cpu): it is chosen when the image is built (docker/build.sh VLLM_DEVICE=cuda|cpu); unset it"* ]]
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=0"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "--explain on a CPU image: the device from the image, the CPU presets with their source" {
  printf 'VLLM_DEVICE=cpu\n' >"${APP_ROOT}/image.env"
  export VLLM_DEVICE=cpu
  run -0 --separate-stderr "${MAIN}" --explain
  rm -f "${APP_ROOT}/image.env"
  assert_explained VLLM_DEVICE cpu image
  assert_explained CHAT_KV_CACHE_BYTES 2G "cpu preset"
  assert_explained CHAT_ENFORCE_EAGER 1 "cpu preset"
  assert_explained CHAT_GPU_FRAC '<unset>' unset
  assert_explained VLLM_CPU_OMP_THREADS_BIND '<unset>' unset
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=0"
}

@test "user values win over every GPU preset and default" {
  export KV_DTYPE=auto MAX_NUM_SEQS=7 MAX_NUM_BATCHED_TOKENS=999 TORCH_CUDA_ARCH_LIST="8.0 9.0" \
    TENSOR_PARALLEL_SIZE=1 SERVED_MODEL_NAME=mine CHAT_GPU_FRAC=0.5 CHAT_ATTENTION_BACKEND=FLASH_ATTN
  export PYTHONPATH="${STACK_FIXTURES}/flashinfer"
  start_on two-gpus
  assert_success
  assert_equal "$(server_env KV_DTYPE) $(server_env MAX_NUM_SEQS) $(server_env MAX_NUM_BATCHED_TOKENS)" "auto 7 999"
  assert_equal "$(server_env TORCH_CUDA_ARCH_LIST)|$(server_env TENSOR_PARALLEL_SIZE)" "8.0 9.0|1"
  assert_equal "$(server_env SERVED_MODEL_NAME) $(server_env CHAT_GPU_FRAC) $(server_env TOOL_GPU_FRAC)" "mine 0.5 0.20"
  assert_equal "$(server_env CHAT_ATTENTION_BACKEND)" FLASH_ATTN
}

@test "two GPUs: TENSOR_PARALLEL_SIZE=2; a small /dev/shm is a warning naming --shm-size" {
  stack_small_shm 64
  start_on two-gpus
  assert_success
  assert_equal "$(server_env TENSOR_PARALLEL_SIZE)" 2
  assert_equal "$(cat "${STUB_DIR}/df.calls")" "-Pk ${SHM_PATH}"
  [[ "${stderr}" == *"[startup] ⚠ /dev/shm is 64 MiB with 2 GPUs visible; multi-GPU engines need more: run with --shm-size=16g or --ipc=host"* ]]
}

@test "one GPU with a small /dev/shm: no warning; TP above the GPU count is an error" {
  stack_small_shm 64
  start_on h100
  assert_success
  [[ "${stderr}" != *"/dev/shm"* ]]
  assert_equal "$(stub_call_count df)" 0
  rm -f "${STACK_RECORDS}"/*
  TENSOR_PARALLEL_SIZE=4 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ TENSOR_PARALLEL_SIZE 4 is more than the 1 visible GPU(s)"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "FlashInfer installed: FLASHINFER backend, found without importing it; absent: none" {
  # The fake package raises when imported, so a start that succeeds did not import it.
  export PYTHONPATH="${STACK_FIXTURES}/flashinfer"
  start_on h100
  assert_success
  assert_equal "$(server_env FLASHINFER_AVAILABLE)/$(server_env CHAT_ATTENTION_BACKEND)" 1/FLASHINFER
  assert_equal "$(server_env VLLM_ATTENTION_BACKEND)" "<unset>"
  run -0 --separate-stderr "${MAIN}" --explain
  assert_explained CHAT_ATTENTION_BACKEND FLASHINFER "gpu preset"
  CHAT_ATTENTION_BACKEND=FLASH_ATTN run -0 --separate-stderr "${MAIN}" --explain
  assert_explained CHAT_ATTENTION_BACKEND FLASH_ATTN user
  rm -f "${STACK_RECORDS}"/*
  unset PYTHONPATH
  run --separate-stderr "${MAIN}"
  assert_success
  assert_equal "$(server_env FLASHINFER_AVAILABLE)/$(server_env CHAT_ATTENTION_BACKEND)" 0/"<unset>"
  rm -f "${STACK_RECORDS}"/*
  PYTHONPATH="${STACK_FIXTURES}/flashinfer" FLASHINFER_AVAILABLE=0 run --separate-stderr "${MAIN}"
  assert_equal "$(server_env CHAT_ATTENTION_BACKEND)" "<unset>"
}

@test "the model's quant_method is reported (CHAT_MODEL_QUANT) but not forced on vLLM; the user's CHAT_QUANTIZATION is" {
  CHAT_MODEL_PATH="$(rm -rf "${MODELS}/chat"; stack_bake_model chat awq)"
  start_on h100
  assert_success
  assert_equal "$(server_env CHAT_MODEL_QUANT)" awq
  # vLLM reads config.json itself and picks awq_marlin; --quantization awq would force the slow kernel
  assert_equal "$(server_env CHAT_QUANTIZATION)" "<unset>"
  [[ "${stderr}" == *"chat=Qwen/Qwen3-8B (awq)"* ]]
  rm -f "${STACK_RECORDS}"/*
  CHAT_QUANTIZATION=awq_marlin run --separate-stderr "${MAIN}"
  assert_equal "$(server_env CHAT_QUANTIZATION)" awq_marlin
}

@test "deploy modes: chat and tool fractions 0.90; tool-only needs no chat model" {
  DEPLOY_MODE=chat start_on h100
  assert_success
  assert_equal "$(server_env CHAT_GPU_FRAC)/$(server_env TOOL_GPU_FRAC)" 0.90/"<unset>"
  rm -f "${STACK_RECORDS}"/*
  unset CHAT_MODEL
  rm -rf "${MODELS}/chat"
  DEPLOY_MODE=tool run --separate-stderr "${MAIN}"
  assert_success
  assert_equal "$(server_env DEPLOY_MODE) $(server_env TOOL_GPU_FRAC)/$(server_env CHAT_GPU_FRAC)" "tool 0.90/<unset>"
  DEPLOY_MODE=chat run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"CHAT_MODEL is not set but DEPLOY_MODE=chat serves a chat model"* ]]
  DEPLOY_MODE=chatty run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"DEPLOY_MODE 'chatty' is not valid; use one of: chat, tool, both"* ]]
}

@test "memory fractions: overrides, a sum above 0.95 and a bad value stop the start" {
  CHAT_GPU_FRAC=0.60 TOOL_GPU_FRAC=0.30 start_on h100
  assert_success
  assert_equal "$(server_env CHAT_GPU_FRAC)/$(server_env TOOL_GPU_FRAC)" 0.60/0.30
  rm -f "${STACK_RECORDS}"/*
  CHAT_GPU_FRAC=0.80 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"CHAT_GPU_FRAC (0.80) + TOOL_GPU_FRAC (0.20) is above 0.95 of GPU memory"* ]]
  TOOL_GPU_FRAC=half run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ TOOL_GPU_FRAC='half' is not valid; expected a number between 0.01 and 1.0"* ]]
  TOOL_GPU_FRAC=0.005 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ TOOL_GPU_FRAC='0.005' is not valid; expected a number between 0.01 and 1.0"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  TOOL_GPU_FRAC=0.01 run -0 --separate-stderr "${MAIN}"
  assert_equal "$(server_env TOOL_GPU_FRAC)" 0.01
}

@test "UVICORN_WORKERS above 1 with the chat engine deployed is refused before anything starts" {
  stack_gpu h100
  UVICORN_WORKERS=2 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ UVICORN_WORKERS=2 with DEPLOY_MODE=both: each worker would start its own chat engine on CHAT_ENGINE_PORT; keep UVICORN_WORKERS=1 (with DEPLOY_MODE=chat, GATEWAY_WORKERS=N serves with N workers over one engine) or scale with more containers (replicas)"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  UVICORN_WORKERS=1 DEPLOY_MODE=chat run -0 --separate-stderr "${MAIN}"
  assert_served_without_secret
}

@test "bad KV_DTYPE, PORT = CHAT_ENGINE_PORT and ENGINE=trt are errors before any server; fp8 on an A100 is a warning" {
  stack_gpu a100
  KV_DTYPE=int4 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ KV_DTYPE='int4' is not valid; valid: auto, fp8, fp8_e4m3, fp8_e5m2"* ]]
  PORT=8001 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ CHAT_ENGINE_PORT=8001 equals PORT; the chat engine needs its own internal port"* ]]
  ENGINE=trt run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ ENGINE 'trt' is not served by the vllm image"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  KV_DTYPE=fp8 run -0 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ⚠ KV_DTYPE=fp8 on NVIDIA A100-SXM4-80GB (sm80), which has no FP8 hardware"* ]]
}

@test "a manifest whose sizes disagree, or a stray *.incomplete, stops the start" {
  stack_gpu h100
  head -c 10 /dev/zero >>"${CHAT_MODEL_PATH}/model.safetensors"
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ chat model in ${CHAT_MODEL_PATH} does not match its download manifest: "*"'model.safetensors' has 4106 bytes, the manifest says 4096"* ]]
  truncate -s 4096 "${CHAT_MODEL_PATH}/model.safetensors"
  touch "${TOOL_MODEL_PATH}/model.safetensors.incomplete"
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[vllm] ✗ tool model in ${TOOL_MODEL_PATH} holds a half-finished download (model.safetensors.incomplete)"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "CA_BUNDLE is exported for every client; HF_HUB_OFFLINE=0 from the user is kept" {
  printf 'not really a certificate\n' >"${BATS_TEST_TMPDIR}/ca bundle.pem"
  export CA_BUNDLE="${BATS_TEST_TMPDIR}/ca bundle.pem" HF_HUB_OFFLINE=0
  start_on h100
  assert_success
  assert_equal "$(server_env REQUESTS_CA_BUNDLE)|$(server_env SSL_CERT_FILE)|$(server_env CURL_CA_BUNDLE)" \
    "${CA_BUNDLE}|${CA_BUNDLE}|${CA_BUNDLE}"
  assert_equal "$(server_env HF_HUB_OFFLINE)" 0
  CA_BUNDLE="${BATS_TEST_TMPDIR}/missing.pem" run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"CA_BUNDLE '${BATS_TEST_TMPDIR}/missing.pem' is not a readable, non-empty file"* ]]
}

@test "--explain on an H100 with a user KV_DTYPE: each setting with its source, nothing started" {
  export KV_DTYPE=auto
  stack_gpu h100
  run -0 --separate-stderr "${MAIN}" --explain
  assert_explained KV_DTYPE auto user
  assert_explained MAX_NUM_SEQS 256 "gpu preset"
  assert_explained MAX_NUM_BATCHED_TOKENS 16384 "gpu preset" # a number, not a secret
  assert_explained TORCH_CUDA_ARCH_LIST 9.0 "gpu preset"
  assert_explained CHAT_GPU_FRAC 0.70 "deploy mode"
  assert_explained TENSOR_PARALLEL_SIZE 1 default
  assert_explained HF_HUB_OFFLINE 1 default
  assert_explained ENGINE vllm image
  assert_explained TEXT_API_KEY '***' user
  assert_explained CHAT_QUANTIZATION '<unset>' unset
  refute_output --partial "${STACK_SECRET}"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  assert_equal "$(gpu_probe_calls)" "nvml=1 smi=1"
}

@test "--download-models: DEPLOY_MODE=chat fetches the chat model only, from HF_ENDPOINT; models.py vllm" {
  unset TEXT_API_KEY
  stack_download_stub 0
  DEPLOY_MODE=chat HF_ENDPOINT=http://127.0.0.1:9 CHAT_MODEL_PATH="${MODELS}/empty" \
    run -0 --separate-stderr "${MAIN}" --download-models
  assert_equal "$(cat "${STUB_DIR}/download-python.calls")" "${APP_ROOT}/common/download/models.py vllm"
  assert_equal "$(cat "${STACK_RECORDS}/download.env")" \
    "DEPLOY_CHAT=1 DEPLOY_TOOL=0 HF_HUB_OFFLINE=<unset> REQUESTS_CA_BUNDLE=<unset>"
  assert_equal "${stderr}" "[vllm] downloading the models of DEPLOY_MODE=chat from http://127.0.0.1:9"
  ENGINE=trt run -1 --separate-stderr "${MAIN}" --download-models
  [[ "${stderr}" == *"ENGINE 'trt' is not served by the vllm image"* ]]
  assert_equal "$(stub_call_count download-python)" 1
}

@test "the bootstrap and the app read one definition: what starts, the app accepts; what the bootstrap refuses, the app refuses too" {
  stack_gpu h100
  local case status cases=("" "PORT=08080" "TENSOR_PARALLEL_SIZE=65" "KV_DTYPE=int4" "PORT=8001"
    "CHAT_GPU_FRAC=1.5" "SHUTDOWN_GRACE_S=nan" "TOOL_MAX_BATCH=0" "CHAT_KV_CACHE_BYTES=2GB"
    "CHAT_ENGINE_PORT=70000" "MAX_HEADER_BYTES=100" "DEPLOY_MODE=chat")
  cases+=("CHAT_ENGINE_CMD=x 'y") # a quote the app's split cannot close
  for case in "${cases[@]}"; do
    rm -f "${STACK_RECORDS}"/*
    status=0
    env ${case:+"${case}"} "${MAIN}" 2>/dev/null || status=$?
    if ((status == 0)); then
      PYTHONPATH="${PROJECT_ROOT}" run -0 "${VENV_PYTHON}" "${PROJECT_ROOT}/tests/apps/settings_of.py" \
        "${STACK_RECORDS}/server.env"
    else
      assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
      PYTHONPATH="${PROJECT_ROOT}" run -1 env ${case:+"${case}"} "${VENV_PYTHON}" \
        "${PROJECT_ROOT}/tests/apps/settings_of.py"
    fi
    echo "${case:-defaults}: bootstrap ${status}, app: ${output}" >&3
  done
}

