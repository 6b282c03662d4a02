#!/usr/bin/env bats
# scripts/gpu_check.sh, the GPU truth check, on a host without a GPU: its no-GPU path for
# real, and its GPU path with the stub nvidia-smi and the fake NVML (torch here is the CPU
# build, so the CUDA checks fail: the table must say so and the status must be 1).
# shellcheck disable=SC2030,SC2031 # each test changes the environment in its own subshell

load 'helpers/common'
load 'helpers/gpu'

CHECK="${BATS_TEST_DIRNAME}/../../scripts/gpu_check.sh"

setup() {
  common_setup
  unset GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT PYTHONPATH CUDA_VISIBLE_DEVICES \
    DEPLOY_MODE TEXT_API_KEY KV_DTYPE TOOL_GPU_FRAC
  hide_programs nvidia-smi
  export TMPDIR="${BATS_TEST_TMPDIR}/tmp dir" GPU_CHECK_WHEELS="${BATS_TEST_TMPDIR}/no wheels"
  mkdir -p "${TMPDIR}"
  # python3 records its calls and runs the project's Python (nvidia-ml-py, CPU torch)
  make_stub python3 "exec '${VENV_PYTHON}' \"\$@\""
}

@test "no GPU (no NVML library, no nvidia-smi): one line, status 0, nothing else runs" {
  fake_nvml "x;9;0;1;0;1"
  unset LD_LIBRARY_PATH # a host without NVIDIA's driver: no libnvidia-ml.so.1
  run -0 "${CHECK}"
  assert_equal "${#lines[@]}" 1
  assert_output "[gpu-check] no NVIDIA GPU on this machine (NVML helper: no NVIDIA driver library (libnvidia-ml.so.1) found; nvidia-smi: not installed): the GPU checks did not run"
  # no Python ran: no NVML helper (nothing it could ask), no model, no bootstrap, no server
  assert [ ! -e "${STUB_DIR}/python3.calls" ]
  assert_equal "$(find "${TMPDIR}" -mindepth 1 | wc -l)" 0
}

@test "no GPU (a driver library that NVML cannot use, no nvidia-smi): one line naming NVML's answer" {
  fake_nvml "x;9;0;1;0;1"
  export FAKE_NVML_NO_DRIVER=1 # as the real binding answers when it finds no working driver
  run -0 "${CHECK}"
  assert_output "[gpu-check] no NVIDIA GPU on this machine (NVML helper: no NVIDIA driver: the NVML shared library (libnvidia-ml.so.1) was not found; nvidia-smi: not installed): the GPU checks did not run"
  run cat "${STUB_DIR}/python3.calls"
  assert_output "-m pyhelpers.gpu --format shell"
}

@test "no GPU, a driver that fails: one line naming nvidia-smi's answer, status 0" {
  fake_nvml "x;9;0;1;0;1"
  export FAKE_NVML_NO_DRIVER=1
  smi_prints fail.err 9
  run -0 "${CHECK}"
  assert_equal "${#lines[@]}" 1
  assert_output --regexp '^\[gpu-check\] no NVIDIA GPU on this machine \(.*; nvidia-smi: .+\): the GPU checks did not run$'
  assert_equal "$(stub_call_count nvidia-smi)" 1
}

@test "a GPU (fake NVML and stub nvidia-smi, H100) on CPU torch: the table passes detection, presets and argv, fails the CUDA checks, status 1" {
  fake_nvml "NVIDIA H100 80GB HBM3;9;0;81559;0;1"
  smi_prints h100.csv
  run -1 --separate-stderr "${CHECK}"
  assert_line "detection with NVML:           NVIDIA H100 80GB HBM3: sm90, 80 GiB, 1 GPU(s), FP8 yes (from NVML)"
  assert_line "detection with NVML hidden:    NVIDIA H100 80GB HBM3: sm90, 80 GiB, 1 GPU(s), FP8 yes (from nvidia-smi)"
  # the presets, with their provenance, as `main.sh --explain` prints them
  assert_line --regexp '^  KV_DTYPE +fp8 +\(gpu preset\)$'
  assert_line --regexp '^  MAX_NUM_BATCHED_TOKENS +16384 +\(gpu preset\)$'
  assert_line --regexp '^  GPU_SM +sm90 +\(gpu preset\)$'
  assert_line --regexp '^  TORCH_CUDA_ARCH_LIST +9\.0 +\(gpu preset\)$'
  assert_line --regexp '^vllm: vllm serve .* --gpu-memory-utilization 0\.7 --kv-cache-dtype fp8 --max-num-seqs 256 --max-num-batched-tokens 16384$'
  assert_line --regexp '^trt: trtllm-serve .* --tp_size 1 --kv_cache_free_gpu_memory_fraction 0\.7$'
  # the table: one row per check, the CUDA ones failed
  assert_line "| check | expected | seen | result |"
  assert_line --regexp '^\| detection, NVML first \| .* \(from NVML\) \| pass \|$'
  assert_line --regexp '^\| detection, NVML hidden \| .* \(from nvidia-smi\) \| pass \|$'
  assert_line --regexp '^\| vllm GPU presets \| .* \| all 5 from it \| pass \|$'
  assert_line --regexp '^\| trt GPU presets \| .* \| all 3 from it; GPU_SM sm90, GPU_SM_ARCH sm90 \| pass \|$'
  assert_line --regexp '^\| torch sees the GPU \| .* \| no CUDA device \(torch .*\) \| \*\*FAIL\*\* \|$'
  assert_line --regexp '^\| tool stack serves /v1/classify \| .* model on cuda \| 200, 2 results \(.*\), model on cpu \| \*\*FAIL\*\* \|$'
  assert_line --regexp '^\| vllm engine argv \| .* \| all as set \| pass \|$'
  assert_line --regexp '^\| trt engine argv \| .* \| all as set \| pass \|$'
  assert_equal "${lines[-1]}" "6 of 8 checks passed"
  # the missing wheels are said once; the served key never shows; nothing is left behind
  [[ "${stderr}" == *"no wheels in ${GPU_CHECK_WHEELS}/"* ]]
  run -1 pgrep -f "${TMPDIR}/gpu-check"
  assert_equal "$(find "${TMPDIR}" -mindepth 1 -maxdepth 1 | wc -l)" 0
}

@test "wheels: pip downloads the tool stack's pins for CPython 3.12 on x86_64 into GPU_CHECK_WHEELS" {
  make_stub python3 "exit 0"
  run -0 --separate-stderr "${CHECK}" wheels
  local pin
  for pin in fastapi uvicorn uvloop httptools prometheus_client; do
    pin="$(grep -m1 "^${pin}==" "${PROJECT_ROOT}/docker/tool/requirements.txt")"
    pin="${pin%%[[:space:]#]*}" # without the line's comment
    grep -q -- " ${pin}\( \|$\)" "${STUB_DIR}/python3.calls"
  done
  run cat "${STUB_DIR}/python3.calls"
  assert_output --partial "-m pip download "
  assert_output --partial "--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --platform manylinux_2_17_x86_64"
  assert_output --partial "--dest ${GPU_CHECK_WHEELS} "
  [[ -d "${GPU_CHECK_WHEELS}" ]]
}

@test "wheels: a requirements file without a pin is one error naming the package, nothing downloaded" {
  local root="${BATS_TEST_TMPDIR}/repo"
  mkdir -p "${root}/scripts" "${root}/docker/tool" "${root}/docker/common"
  cp "${CHECK}" "${root}/scripts/"
  cp -r "${PROJECT_ROOT}/docker/common/scripts" "${root}/docker/common/"
  grep -v '^uvloop==' "${PROJECT_ROOT}/docker/tool/requirements.txt" >"${root}/docker/tool/requirements.txt"
  run -1 --separate-stderr "${root}/scripts/gpu_check.sh" wheels
  assert_equal "${stderr}" "[gpu-check] ✗ docker/tool/requirements.txt pins no uvloop (a 'uvloop==<version>' line)"
  assert_equal "$(stub_call_count python3)" 0
}

@test "--help prints the usage; an unknown argument is status 64" {
  run -0 "${CHECK}" --help
  [[ "${lines[0]}" == "Usage:   scripts/gpu_check.sh [--help | wheels]" ]]
  assert_output --partial "GPU_CHECK_WHEELS"
  run -64 --separate-stderr "${CHECK}" run
  assert_equal "${stderr}" "[gpu-check] ✗ unknown argument 'run'; use --help, wheels, or nothing (run the check)"
}
