# shellcheck shell=bash
# Helpers for the stack suites (stack_tool.bats, stack_vllm.bats, stack_trt.bats and
# tests/pins/vllm_flags.bats): the real stack scripts run in the image layout that
# prepare_build_context_common assembles, with stub nvidia-smi programs, baked model and
# engine directories with a download manifest, and a stub uvicorn that records what the
# server would get.
# Load after helpers/common:   load 'helpers/stack'
# Call stack_assemble STACK from setup_file() and stack_setup (vllm: stack_vllm_setup) from setup().
#
# stack_setup gives each test:
#   APP_ROOT       the assembled context (/app in the image; its path holds a space)
#   STACK_RECORDS  where the stub uvicorn writes uvicorn.calls and server.env
#   MODELS         a directory for baked models and engines
#   SHM_PATH       a directory on the test's file system (start-up's /dev/shm check)

STACK_FIXTURES="${PROJECT_ROOT}/tests/bats/fixtures/stacks"
NVIDIA_SMI_FIXTURES="${PROJECT_ROOT}/tests/bats/fixtures/nvidia-smi"
readonly STACK_SECRET="sk-stack-suite-do-not-print"

# Assemble the image layout of a stack once for the suite, into BATS_FILE_TMPDIR,
# with the function the build uses.
# Globals:   STACK_APP_ROOT (exported)
# Arguments: stack (vllm, trt, tool)
stack_assemble() {
  local stack_dir="${PROJECT_ROOT}/docker/$1"
  mkdir -p "${BATS_FILE_TMPDIR}/context tmp"
  # shellcheck source=docker/common/scripts/build/context.sh
  source "${PROJECT_ROOT}/docker/common/scripts/build/context.sh"
  TMPDIR="${BATS_FILE_TMPDIR}/context tmp" prepare_build_context_common \
    "${stack_dir}" "${stack_dir}/requirements.txt" 0 "app root" >/dev/null
  export STACK_APP_ROOT="${BUILD_CONTEXT_DIR:?context not assembled}"
}

# Per-test set-up: a clean environment (no setting inherited from the host), the
# stub uvicorn on PATH, records and models directories.
stack_setup() {
  common_setup
  local name
  for name in $(compgen -e); do
    case "${name}" in
      DEPLOY_* | ENGINE | CHAT_* | TOOL_* | TRT_* | GPU_* | DETECTED_GPU_NAME | KV_DTYPE | MAX_NUM_* | \
        TENSOR_PARALLEL_SIZE | SERVED_MODEL_NAME | VLLM_* | FLASHINFER_* | TORCH_CUDA_ARCH_LIST | \
        PYTORCH_* | CUDA_* | HF_* | CA_BUNDLE | REQUESTS_CA_BUNDLE | SSL_CERT_FILE | CURL_CA_BUNDLE | \
        TEXT_API_KEY* | PYTHONPATH | SERVER_APP | HOST | PORT | WARMUP_* | SHM_PATH | _GPU_*)
        unset "${name}"
        ;;
    esac
  done
  export APP_ROOT="${STACK_APP_ROOT}"
  export STACK_RECORDS="${BATS_TEST_TMPDIR}/records"
  export MODELS="${BATS_TEST_TMPDIR}/baked models"
  export SHM_PATH="${BATS_TEST_TMPDIR}"
  export HOST=127.0.0.1 WARMUP_MAX_WAIT=10
  mkdir -p "${STACK_RECORDS}" "${MODELS}"
  cp "${STACK_FIXTURES}/uvicorn" "${STUB_DIR}/uvicorn"
  # python3 records its calls and runs the real one, so a test can count the runs of
  # the NVML helper (python3 -m pyhelpers.gpu), the first GPU probe.
  make_stub python3 "exec '${VENV_PYTHON}' \"\$@\""
}

# Per-test set-up of the vllm suites: stack_setup, then a baked chat and tool model, their
# variables and the API key, exported.
stack_vllm_setup() {
  stack_setup
  CHAT_MODEL_PATH="$(stack_bake_model chat)"
  TOOL_MODEL_PATH="$(stack_bake_model tool)"
  export CHAT_MODEL=Qwen/Qwen3-8B TOOL_MODEL=ProsusAI/finbert CHAT_MODEL_PATH TOOL_MODEL_PATH
  export TEXT_API_KEY="${STACK_SECRET}"
}

# Print how many times each GPU probe ran: "nvml=N smi=M" (the NVML helper, then
# nvidia-smi, which detection asks only when the helper has no answer).
gpu_probe_calls() {
  local nvml=0
  [[ ! -f "${STUB_DIR}/python3.calls" ]] || nvml="$(grep -c -- '-m pyhelpers.gpu' "${STUB_DIR}/python3.calls")"
  printf 'nvml=%s smi=%s\n' "${nvml}" "$(stub_call_count nvidia-smi)"
}

# A GPU host as the NVIDIA container runtime presents it: NVML's library (which the real
# binding fails to load here, so the NVML helper runs and gives no answer) and a stub
# nvidia-smi printing a fixture of tests/bats/fixtures/nvidia-smi; "none" leaves both absent
# (a host without a GPU).
# Arguments: fixture name without .csv (h100, a100, l40s, rtx4090, two-gpus …) or none
stack_gpu() {
  [[ "$1" == none ]] && return 0
  nvml_library_present
  make_stub nvidia-smi "cat '${NVIDIA_SMI_FIXTURES}/$1.csv'"
}

# A stub df that reports SHM_PATH as a tmpfs of the given size.
# Arguments: MiB
stack_small_shm() {
  make_stub df "printf 'Filesystem 1024-blocks Used Available Capacity Mounted on\\nshm $(($1 * 1024)) 0 $(($1 * 1024)) 0%% /dev/shm\\n'"
}

# Bake a model directory (config.json with an optional quant_method, weights,
# tokenizer) under MODELS and write its download manifest.
# Arguments: name (chat, tool) [quant_method]
# Outputs:   the directory on stdout
stack_bake_model() {
  local dir="${MODELS}/$1" quant="${2:-}"
  mkdir -p "${dir}"
  if [[ -n "${quant}" ]]; then
    printf '{"model_type": "qwen3", "quantization_config": {"quant_method": "%s", "bits": 4}}\n' "${quant}" >"${dir}/config.json"
  else
    printf '{"model_type": "bert"}\n' >"${dir}/config.json"
  fi
  head -c 4096 /dev/zero >"${dir}/model.safetensors"
  printf '{"version": "1.0"}\n' >"${dir}/tokenizer.json"
  stack_write_manifest "${dir}"
  printf '%s\n' "${dir}"
}

# Bake a TensorRT-LLM engine directory under MODELS with a manifest.
# Arguments: sm_arch (sm90 …; "-" for no build_metadata.json) ranks [build_config JSON]
# Outputs:   the directory on stdout
stack_bake_engine() {
  local dir="${MODELS}/engine" sm="$1" ranks="$2" build="${3:-}" i
  [[ -n "${build}" ]] || build='{}'
  mkdir -p "${dir}"
  for ((i = 0; i < ranks; i++)); do
    head -c 2048 /dev/zero >"${dir}/rank${i}.engine"
  done
  printf '{"version": "0.17.0", "pretrained_config": {"mapping": {"tp_size": %s}}, "build_config": %s}\n' \
    "${ranks}" "${build}" >"${dir}/config.json"
  [[ "${sm}" == - ]] || printf '{"sm_arch": "%s", "trtllm_version": "0.17.0"}\n' "${sm}" >"${dir}/build_metadata.json"
  stack_write_manifest "${dir}"
  printf '%s\n' "${dir}"
}

# Write the download manifest of a directory with pyhelpers.manifest, as a build does.
# Arguments: directory
stack_write_manifest() {
  PYTHONPATH="${PROJECT_ROOT}" "${VENV_PYTHON}" -c '
import sys
from pathlib import Path
from pyhelpers.manifest import build_manifest, list_files, write_manifest
d = Path(sys.argv[1])
write_manifest(d, build_manifest(d, list_files(d), {"repo_id": "test/model", "revision": "main"}))
' "$1"
}

# Print the value the stub server was started with for a variable ("<unset>" when
# absent from its environment).
# Arguments: name
server_env() {
  local line
  line="$(grep -m1 "^$1=" "${STACK_RECORDS}/server.env")" || {
    printf '<unset>\n'
    return 0
  }
  printf '%s\n' "${line#*=}"
}

# Assert that the server started once and nothing printed the API key.
# Globals:   output, stderr (of the last run)
assert_served_without_secret() {
  assert_equal "$(grep -cv -- '--version' "${STACK_RECORDS}/uvicorn.calls")" 1
  [[ "${output:-}${stderr:-}" != *"${STACK_SECRET}"* ]] || fail "the API key was printed"
}

# Assert the line of `--explain` output for a variable: its value and source.
# Arguments: name value source
assert_explained() {
  local line
  line="$(grep -E "^$1 " <<<"${output:-}")" || fail "no line for $1 in: ${output:-}"
  [[ "${line}" =~ ^$1\ +(.*[^ ])\ +\((.*)\)$ ]] || fail "line for $1 not understood: ${line}"
  assert_equal "$1=${BASH_REMATCH[1]} (${BASH_REMATCH[2]})" "$1=$2 ($3)"
}

# A stub Python for `main.sh --download-models` (DOWNLOAD_PYTHON): it records its
# arguments in download-python.calls and the deploy flags, HF_HUB_OFFLINE and the CA
# bundle it got in STACK_RECORDS/download.env, then exits with the given status.
# Globals:   DOWNLOAD_PYTHON (exported)
# Arguments: status
stack_download_stub() {
  # shellcheck disable=SC2016 # expanded when the stub runs
  make_stub download-python 'printf "DEPLOY_CHAT=%s DEPLOY_TOOL=%s HF_HUB_OFFLINE=%s REQUESTS_CA_BUNDLE=%s\n" "${DEPLOY_CHAT-}" "${DEPLOY_TOOL-}" "${HF_HUB_OFFLINE-<unset>}" "${REQUESTS_CA_BUNDLE-<unset>}" >"${STACK_RECORDS}/download.env"; exit '"$1"
  export DOWNLOAD_PYTHON="${STUB_DIR}/download-python"
}
