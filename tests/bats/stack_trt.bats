#!/usr/bin/env bats
# The trt stack's scripts (docker/trt/scripts) run in the assembled image layout with
# stub nvidia-smi programs, baked model and engine directories (rank*.engine, config.json,
# build_metadata.json, manifest) and a stub uvicorn; main.sh execs start_server.sh.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'
load 'helpers/stack'

readonly BUILD='{"max_input_len": 3072, "max_seq_len": 4096, "max_batch_size": 16, "max_num_tokens": 8192}'

setup_file() {
  stack_assemble trt
}

setup() {
  stack_setup
  CHAT_MODEL_PATH="$(stack_bake_model chat)"
  TOOL_MODEL_PATH="$(stack_bake_model tool)"
  export CHAT_MODEL=yapwithai/qwen3-trt TOOL_MODEL=ProsusAI/finbert CHAT_MODEL_PATH TOOL_MODEL_PATH
  export TRT_ENGINE_REPO=yapwithai/qwen3-trt TRT_ENGINE_LABEL=sm90_trt-llm-0.17.0_cuda12.8
  export TRT_ENGINE_DIR="${MODELS}/engine"
  export TEXT_API_KEY="${STACK_SECRET}"
  MAIN="${APP_ROOT}/scripts/main.sh"
}

# Bake an engine, then start the stack with a GPU fixture.
# Arguments: fixture sm_arch ranks
start_with() {
  stack_bake_engine "$2" "$3" "${BUILD}" >/dev/null
  stack_gpu "$1"
  run --separate-stderr "${MAIN}"
}

@test "--help of main.sh and start_server.sh, nothing started" {
  stack_gpu h100
  run -0 --separate-stderr "${MAIN}" --help
  assert_output --partial "trtllm-serve"
  assert_output --partial "docker/trt/README.md"
  run -0 --separate-stderr "${APP_ROOT}/scripts/start_server.sh" --help
  assert_line --index 0 "Usage:   start_server.sh [--help]"
  assert_equal "$(gpu_probe_calls)" "nvml=0 smi=0"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "no TEXT_API_KEY: status 1 before start_server.sh" {
  unset TEXT_API_KEY
  start_with h100 sm90 1
  assert_failure 1
  [[ "${stderr}" == *"[trt] ✗ no API key"* ]]
  [[ "${stderr}" != *"start_server.sh"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "H100 with an sm90 engine: starts through start_server.sh with one GPU probe; engine limits applied" {
  start_with h100 sm90 1
  assert_success
  assert_served_without_secret
  [[ "${stderr}" == *"[trt] starting ${APP_ROOT}/scripts/start_server.sh"* ]]
  [[ "${stderr}" == *"[trt] ✓ engine sm90 x1 matches NVIDIA H100 80GB HBM3 x1"* ]]
  assert_equal "$(gpu_probe_calls)" "nvml=1 smi=1"
  assert_equal "$(server_env ENGINE) $(server_env GPU_SM) $(server_env TORCH_CUDA_ARCH_LIST)" "trt sm90 9.0"
  assert_equal "$(server_env CHAT_MAX_LEN) $(server_env MAX_NUM_SEQS) $(server_env MAX_NUM_BATCHED_TOKENS)" "4096 16 8192"
  assert_equal "$(server_env TENSOR_PARALLEL_SIZE) $(server_env TRT_ENGINE_DIR)" "1 ${TRT_ENGINE_DIR}"
  assert_equal "$(server_env CHAT_GPU_FRAC) $(server_env TOOL_GPU_FRAC) $(server_env TRT_KV_FREE_GPU_FRAC)" "0.70 0.20 0.70"
  assert_equal "$(server_env HF_HUB_OFFLINE)" 1
}

@test "L40S with an sm90 engine: GPU ARCHITECTURE MISMATCH, status 1, no server" {
  start_with l40s sm90 1
  assert_failure 1
  [[ "${stderr}" == *"[trt] ✗ GPU ARCHITECTURE MISMATCH: engine sm90, this GPU sm89 (NVIDIA L40S);"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  assert_equal "$(gpu_probe_calls)" "nvml=1 smi=1"
}

@test "an engine without build_metadata.json, or without rank files, stops the start" {
  start_with h100 - 1
  assert_failure 1
  [[ "${stderr}" == *"[trt] ✗ missing engine metadata: ${TRT_ENGINE_DIR}/build_metadata.json"* ]]
  rm -rf "${TRT_ENGINE_DIR}"
  start_with h100 sm90 0
  assert_failure 1
  [[ "${stderr}" == *"[trt] ✗ no engine files (rank*.engine) in TRT_ENGINE_DIR '${TRT_ENGINE_DIR}'"* ]]
  rm -rf "${TRT_ENGINE_DIR}"
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"TensorRT-LLM engine directory TRT_ENGINE_DIR='${TRT_ENGINE_DIR}' does not exist"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "rank count vs GPU count: 1 rank on 2 GPUs stops; 2 ranks on 2 GPUs start with TP 2" {
  start_with two-gpus sm90 1
  assert_failure 1
  [[ "${stderr}" == *"[trt] ✗ the engine has 1 rank(s) (rank*.engine) but 2 GPU(s) are visible; make exactly 1 visible"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  rm -rf "${TRT_ENGINE_DIR}"
  start_with two-gpus sm90 2
  assert_success
  assert_equal "$(server_env TENSOR_PARALLEL_SIZE)" 2
}

@test "no GPU with chat deployed: a clear error; tool-only on a CPU host needs no engine" {
  start_with none sm90 1
  assert_failure 1
  [[ "${stderr}" == *"[trt] ✗ no NVIDIA GPU visible, but the TensorRT-LLM engine (sm90) needs one"* ]]
  rm -rf "${TRT_ENGINE_DIR}" "${MODELS}/chat"
  unset CHAT_MODEL TRT_ENGINE_REPO
  DEPLOY_MODE=tool run -0 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] DEPLOY_MODE=tool: no chat engine to check"* ]]
  assert_equal "$(server_env TOOL_GPU_FRAC) $(server_env TRT_KV_FREE_GPU_FRAC)" "0.90 <unset>"
}

@test "chat only: fractions 0.90; user values win; a value above the engine's limit is an error" {
  DEPLOY_MODE=chat TRT_KV_FREE_GPU_FRAC=0.5 MAX_NUM_SEQS=8 start_with h100 sm90 1
  assert_success
  assert_equal "$(server_env CHAT_GPU_FRAC) $(server_env TOOL_GPU_FRAC)" "0.90 <unset>"
  assert_equal "$(server_env TRT_KV_FREE_GPU_FRAC) $(server_env MAX_NUM_SEQS)" "0.5 8"
  rm -f "${STACK_RECORDS}"/*
  CHAT_MAX_LEN=32768 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ✗ CHAT_MAX_LEN '32768' is not valid for this engine: it was built for at most 4096"* ]]
  CHAT_GPU_FRAC=0.9 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"is above 0.95 of GPU memory"* ]]
  ENGINE=vllm run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ✗ ENGINE 'vllm' is not served by the trt image"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

# Rewrite the baked engine's config.json with a quantization, as trtllm-build writes
# it (pretrained_config.quantization), and its manifest with it.
# Arguments: quant_algo
quantize_engine() {
  "${VENV_PYTHON}" -c '
import json, sys
path = sys.argv[1] + "/config.json"
cfg = json.load(open(path))
cfg["pretrained_config"]["quantization"] = {"quant_algo": sys.argv[2], "kv_cache_quant_algo": None}
json.dump(cfg, open(path, "w"))
' "${TRT_ENGINE_DIR}" "$1"
  stack_write_manifest "${TRT_ENGINE_DIR}"
}

@test "the engine's quantization and input limit: in the summary and --explain; a user TP other than the engine's is an error" {
  stack_bake_engine sm90 1 "${BUILD}" >/dev/null
  quantize_engine W4A16_AWQ
  stack_gpu h100
  run -0 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ✓ ready to start: DEPLOY_MODE=both, GPU: NVIDIA H100 80GB HBM3 x1 (sm90), chat=yapwithai/qwen3-trt (W4A16_AWQ) tool="* ]]
  assert_equal "$(server_env CHAT_MODEL_QUANT) $(server_env TRT_MAX_INPUT_LEN) $(server_env TRT_MAX_OUTPUT_LEN)" "W4A16_AWQ 3072 <unset>"
  run -0 --separate-stderr "${MAIN}" --explain
  assert_explained CHAT_MODEL_QUANT W4A16_AWQ "engine config"
  assert_explained TRT_MAX_INPUT_LEN 3072 "engine config"
  rm -f "${STACK_RECORDS}"/*
  TRT_MAX_INPUT_LEN=4000 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ✗ TRT_MAX_INPUT_LEN '4000' is not valid for this engine: it was built for at most 3072"* ]]
  TENSOR_PARALLEL_SIZE=2 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ✗ TENSOR_PARALLEL_SIZE '2' does not match the engine, which was built for 1 rank(s) (tp_size); unset it"* ]]
  TENSOR_PARALLEL_SIZE=1 TRT_MAX_INPUT_LEN=2048 run -0 --separate-stderr "${MAIN}"
  assert_equal "$(server_env TRT_MAX_INPUT_LEN)" 2048
}

@test "GPU_SM: the user's value is what the engine is checked against; a bad one is an error" {
  stack_bake_engine sm90 1 "${BUILD}" >/dev/null
  stack_gpu h100
  GPU_SM=sm89 run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ⚠ GPU_SM=sm89 (user) differs from the detected sm90 (NVIDIA H100 80GB HBM3)"* ]]
  [[ "${stderr}" == *"[trt] ✗ GPU ARCHITECTURE MISMATCH: engine sm90, this GPU sm89 (NVIDIA H100 80GB HBM3, GPU_SM set);"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
  rm -f "${STUB_DIR}"/nvidia-smi*
  stack_gpu l40s
  GPU_SM=sm_90 run -0 --separate-stderr "${MAIN}"
  assert_equal "$(server_env GPU_SM) $(server_env GPU_SM_ARCH)" "sm90 sm89"
  [[ "${stderr}" == *"[trt] ✓ engine sm90 x1 matches NVIDIA L40S x1"* ]]
  GPU_SM=90 run -0 --separate-stderr "${MAIN}" --explain
  assert_explained GPU_SM sm90 user
  GPU_SM=hopper run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ✗ GPU_SM 'hopper' is not a GPU architecture; use the form sm90"* ]]
}

@test "an engine file of the wrong size, or a stray *.incomplete, stops the start" {
  stack_bake_engine sm90 1 >/dev/null
  stack_gpu h100
  head -c 1 /dev/zero >>"${TRT_ENGINE_DIR}/rank0.engine"
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"[trt] ✗ TensorRT-LLM engine in ${TRT_ENGINE_DIR} does not match its download manifest: "*"'rank0.engine' has 2049 bytes, the manifest says 2048"* ]]
  truncate -s 2048 "${TRT_ENGINE_DIR}/rank0.engine"
  touch "${CHAT_MODEL_PATH}/tokenizer.json.incomplete"
  run -1 --separate-stderr "${MAIN}"
  [[ "${stderr}" == *"holds a half-finished download (tokenizer.json.incomplete)"* ]]
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}

@test "--explain on an H100: engine limits, GPU presets and user values with their sources" {
  stack_bake_engine sm90 1 "${BUILD}" >/dev/null
  stack_gpu h100
  MAX_NUM_SEQS=4 run -0 --separate-stderr "${MAIN}" --explain
  assert_explained MAX_NUM_SEQS 4 user
  assert_explained CHAT_MAX_LEN 4096 "engine config"
  assert_explained GPU_SM sm90 "gpu preset"
  assert_explained TRT_KV_FREE_GPU_FRAC 0.70 "deploy mode"
  assert_explained CHAT_ENGINE_PORT 8001 default
  assert_explained TEXT_API_KEY '***' user
  refute_output --partial "${STACK_SECRET}"
  assert [ ! -e "${STACK_RECORDS}/uvicorn.calls" ]
}
