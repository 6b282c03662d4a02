#!/usr/bin/env bash
# Usage:   scripts/gpu_check.sh [--help | wheels]
# Summary: The GPU truth check: on a machine with an NVIDIA GPU, run the layer's GPU paths
#          for real and end with one table (check, expected, seen, pass/fail); status 0
#          only when every check passed. Without a GPU it says so in one line and exits 0,
#          running nothing else. Meant to take under 3 minutes (about 25 s with the
#          test stubs on a 2-core CPU host); every step has a time limit.
#            1. gpu_init_detection (docker/common/scripts/gpu.sh) twice: NVML first
#               (pyhelpers/gpu.py), then with NVML hidden (nvidia-smi); name, architecture,
#               memory, count, FP8 and the probe that answered, for each
#            2. the vllm and trt bootstraps (DEPLOY_MODE=both, in the image layout the build
#               assembles): what gpu_apply_env_defaults and the stack's GPU presets set,
#               from `main.sh --explain`
#            3. in the vllm bootstrap's environment: torch against the detection, the tiny
#               tool model through src/engines/tool.py on CUDA under TOOL_GPU_FRAC (what
#               torch holds against the fraction; an allocation beyond it must fail), one
#               batch classified; then the tool stack's main.sh serving the model (uvicorn)
#               and one /v1/classify
#            4. build_engine_argv (src/engines/chat.py) for vllm and trt with those presets
#          It needs python3 with CUDA torch, transformers, nvidia-ml-py, httpx and pip;
#          FastAPI, uvicorn and prometheus_client come from the wheel directory when it
#          holds wheels (installed into a temporary directory put on PYTHONPATH, nothing
#          into the Python).
#
#          wheels: on a host that reaches PyPI, download FastAPI, uvicorn, uvloop,
#          httptools and prometheus_client (the tool stack's pins) and everything they need,
#          for CPython 3.12 on x86_64, into the wheel directory (17 wheels, about 8.4 MiB),
#          which can then travel with the working tree to a GPU machine without network.
#
# Environment:
#   GPU_CHECK_WHEELS  the wheel directory (default scripts/gpu_check_wheels, ignored by git)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly CHECK_PY="${ROOT}/scripts/lib/gpu_check.py"
readonly WHEELS="${GPU_CHECK_WHEELS:-${ROOT}/scripts/gpu_check_wheels}"
# What the GPU machine lacks, pinned as the tool stack pins them; the Python they are for.
readonly WHEEL_PACKAGES=(fastapi uvicorn uvloop httptools prometheus_client)
readonly WHEEL_REQUIREMENTS="${ROOT}/docker/tool/requirements.txt"
readonly WHEEL_PYTHON=3.12 WHEEL_ABI=cp312
readonly WHEEL_PLATFORMS=(manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_28_x86_64)
# Seconds one step may take (the served app's start is the longest: importing torch on CUDA).
readonly STEP_TIMEOUT=150
# The values the check measures: they start unset, so what the GPU paths set shows.
readonly CHECK_UNSET=(GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT _GPU_DETECTION_DONE
  TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF PYTORCH_CUDA_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS
  KV_DTYPE MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE GPU_SM CHAT_GPU_FRAC
  TOOL_GPU_FRAC TRT_KV_FREE_GPU_FRAC CHAT_ATTENTION_BACKEND FLASHINFER_AVAILABLE DEPLOY_MODE
  ENGINE CHAT_ENGINE_CMD TEXT_API_KEY TEXT_API_KEY_FILE LOG_FORMAT)

# shellcheck source=docker/common/scripts/gpu.sh
source "${ROOT}/docker/common/scripts/gpu.sh"
# shellcheck source=docker/common/scripts/build/context.sh
source "${ROOT}/docker/common/scripts/build/context.sh"

WORK=""

# Run the real detection in a subshell that starts from no GPU facts (its own TMPDIR, so no
# facts cached by another run answer) and print one tab-separated line: the probe that
# answered (as gpu_init_detection logs it), name, architecture, GiB, count, FP8 (yes/no);
# with no GPU: "none" and the reasons the probes gave.
# Arguments: app_root (where the NVML helper is looked for; an empty directory hides it) dir
# Returns:   1 when detection rejects a setting (its messages on stderr)
check_detect() (
  local log="$2/detect.log" text from fp8=no
  mkdir -p "$2"
  APP_ROOT="$1" TMPDIR="$2" LOG_LEVEL=info gpu_init_detection 2>"${log}" || {
    cat "${log}" >&2
    return 1
  }
  text="$(<"${log}")"
  if ((GPU_COUNT == 0)); then
    from="no probe answered"
    if [[ "${text}" =~ no\ NVIDIA\ GPU\ found\ \((.*)\)\; ]]; then from="${BASH_REMATCH[1]}"; fi
    printf 'none\t%s\n' "${from}"
    return 0
  fi
  from=unknown
  if [[ "${text}" =~ \(from\ ([^\)]+)\) ]]; then from="${BASH_REMATCH[1]}"; fi
  if [[ -n "${GPU_SM_ARCH}" ]] && gpu_supports_fp8 "${GPU_SM_ARCH}"; then fp8=yes; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${from}" "${DETECTED_GPU_NAME}" "${GPU_SM_ARCH}" \
    "${GPU_VRAM_GB}" "${GPU_COUNT}" "${fp8}"
)

# Run a step of gpu_check.py under the step time limit; a step that fails becomes a row.
# Arguments: step [args...]
check_py() {
  local status=0
  timeout -k 5 "${STEP_TIMEOUT}" python3 "${CHECK_PY}" "$@" || status=$?
  ((status == 0)) || check_failed "step '$1'" "${status}"
}

# Add a failed row for a step that did not finish.
# Arguments: what status
check_failed() {
  python3 "${CHECK_PY}" row "$1" "runs to the end (status 0)" "status $2 (its messages above)" fail
}

# Print the `name==version` pins of WHEEL_PACKAGES from the tool stack's requirements.
# Returns:   1 naming the package whose pin is missing
check_pins() {
  local name line found
  for name in "${WHEEL_PACKAGES[@]}"; do
    found=""
    while IFS= read -r line; do
      [[ "${line}" == "${name}=="* ]] && found="${line%%[[:space:]#]*}"
    done <"${WHEEL_REQUIREMENTS}"
    if [[ -z "${found}" ]]; then
      log_err "[gpu-check]" "${WHEEL_REQUIREMENTS#"${ROOT}/"} pins no ${name} (a '${name}==<version>' line)"
      return 1
    fi
    printf '%s\n' "${found}"
  done
}

# The wheels command: download the pinned packages and their dependencies for the GPU
# machine's Python into WHEELS, with this host's pip.
fetch_wheels() {
  local pins=() platform platforms=()
  mapfile -t pins < <(check_pins) && ((${#pins[@]} == ${#WHEEL_PACKAGES[@]})) || return 1
  for platform in "${WHEEL_PLATFORMS[@]}"; do platforms+=(--platform "${platform}"); done
  log_info "[gpu-check]" "downloading ${pins[*]} and their dependencies (CPython ${WHEEL_PYTHON}, x86_64) into ${WHEELS#"${ROOT}/"}/"
  mkdir -p -- "${WHEELS}"
  timeout 600 python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version "${WHEEL_PYTHON}" --implementation cp --abi "${WHEEL_ABI}" "${platforms[@]}" \
    --dest "${WHEELS}" "${pins[@]}"
  log_success "[gpu-check]" "$(find "${WHEELS}" -name '*.whl' | wc -l) wheels, $(du -sh "${WHEELS}" | cut -f1): let ${WHEELS#"${ROOT}/"}/ travel with the working tree"
}

# Install the carried wheels into WORK/site and put it first on PYTHONPATH (nothing is
# installed into the machine's Python). Without WHEELS the Python's own packages serve.
check_site() {
  if ! compgen -G "${WHEELS}/*.whl" >/dev/null; then
    log_warn "[gpu-check]" "no wheels in ${WHEELS#"${ROOT}/"}/ (GPU_CHECK_WHEELS; scripts/gpu_check.sh wheels fetches them): FastAPI, uvicorn and prometheus_client must be this Python's own"
    return 0
  fi
  local pins=() status=0
  mapfile -t pins < <(check_pins) && ((${#pins[@]} == ${#WHEEL_PACKAGES[@]})) || return 1
  timeout -k 5 "${STEP_TIMEOUT}" python3 -m pip install --quiet --disable-pip-version-check \
    --no-index --find-links "${WHEELS}" --target "${WORK}/site" "${pins[@]}" || status=$?
  if ((status != 0)); then
    check_failed "FastAPI, uvicorn and prometheus_client from the wheels" "${status}"
    return 0
  fi
  export PYTHONPATH="${WORK}/site${PYTHONPATH:+:${PYTHONPATH}}"
}

# Run a stack's main.sh in its image layout with DEPLOY_MODE=both and the tiny model as the
# chat and tool model (and the TRT engine directory), under the step time limit.
# Arguments: stack main.sh-arguments...
check_stack() {
  local stack="$1" model="${WORK}/model"
  shift
  APP_ROOT="${WORK}/layout-${stack}" DEPLOY_MODE=both CHAT_MODEL=gpu-check/tiny TOOL_MODEL=gpu-check/tiny \
    CHAT_MODEL_PATH="${model}" TOOL_MODEL_PATH="${model}" TRT_ENGINE_DIR="${model}" HOST=127.0.0.1 \
    timeout -k 5 "${STEP_TIMEOUT}" "${WORK}/layout-${stack}/scripts/main.sh" "$@"
}

# Make what the checks run on: the carried wheels installed, the tiny model (with its
# manifest, as a build bakes it) and the image layout of each stack, assembled by the
# function the build uses.
# Returns:   1 with a message when the model or a layout cannot be made
check_prepare() {
  local stack
  check_site
  if ! timeout -k 5 "${STEP_TIMEOUT}" python3 "${CHECK_PY}" model "${WORK}/model"; then
    log_err "[gpu-check]" "the tiny tool model could not be made (python3 needs torch and transformers)"
    return 1
  fi
  for stack in tool vllm trt; do
    prepare_build_context_common "${ROOT}/docker/${stack}" \
      "${ROOT}/docker/${stack}/requirements.txt" 0 layout >/dev/null || return 1
    mv -- "${BUILD_CONTEXT_DIR}" "${WORK}/layout-${stack}"
  done
}

# The check itself (see the summary at the top).
run_check() {
  local nvml smi stack status
  unset "${CHECK_UNSET[@]}"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
  trap 'rm -rf -- "${WORK}"' EXIT
  export TMPDIR="${WORK}" # what the steps leave (torch's caches too) goes with it
  nvml="$(check_detect "${ROOT}" "${WORK}/nvml")" || return 1
  if [[ "${nvml}" == none$'\t'* ]]; then
    log_info "[gpu-check]" "no NVIDIA GPU on this machine (${nvml#none$'\t'}): the GPU checks did not run"
    return 0
  fi
  export GPU_CHECK_ROWS="${WORK}/rows"
  : >"${GPU_CHECK_ROWS}"
  mkdir -p "${WORK}/no nvml"
  smi="$(check_detect "${WORK}/no nvml" "${WORK}/smi")" || return 1
  printf '%s\n' "${nvml}" >"${WORK}/nvml.facts"
  printf '%s\n' "${smi}" >"${WORK}/smi.facts"
  log_section "[gpu-check]" "1. detection"
  check_py detect "${WORK}/nvml.facts" "${WORK}/smi.facts"
  check_prepare || return 1

  log_section "[gpu-check]" "2. GPU presets (main.sh --explain, DEPLOY_MODE=both)"
  for stack in vllm trt; do
    status=0
    check_stack "${stack}" --explain >"${WORK}/${stack}.explain" || status=$?
    if ((status == 0)); then
      check_py presets "${stack}" "${WORK}/${stack}.explain"
    else
      check_failed "${stack} bootstrap (main.sh --explain)" "${status}"
    fi
  done

  log_section "[gpu-check]" "3. torch and the tool model on CUDA (the vllm bootstrap's environment), then served"
  check_stack vllm python3 "${CHECK_PY}" cuda || check_failed "step 'cuda'" "$?"
  TOOL_MODEL=gpu-check/tiny TOOL_MODEL_PATH="${WORK}/model" check_py serve "${WORK}/layout-tool"

  log_section "[gpu-check]" "4. build_engine_argv with these presets"
  for stack in vllm trt; do
    check_stack "${stack}" python3 "${CHECK_PY}" argv || check_failed "step 'argv' (${stack})" "$?"
  done

  log_section "[gpu-check]" "result"
  python3 "${CHECK_PY}" table
}

main() {
  case "${1:-}" in
    -h | --help) log_usage "${BASH_SOURCE[0]}" ;;
    wheels) fetch_wheels ;;
    "") run_check ;;
    *)
      log_err "[gpu-check]" "unknown argument '$1'; use --help, wheels, or nothing (run the check)"
      return 64
      ;;
  esac
}

main "$@"
