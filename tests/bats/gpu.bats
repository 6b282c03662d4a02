#!/usr/bin/env bats
# docker/common/scripts/gpu.sh with stub nvidia-smi programs and a fake or real NVML helper.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'
load 'helpers/gpu'

FIXTURES="${BATS_TEST_DIRNAME}/fixtures/nvidia-smi"

setup() {
  common_setup
  unset GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT GPU_QUERY_TIMEOUT _GPU_DETECTION_DONE \
    TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF PYTORCH_CUDA_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS \
    CUDA_VISIBLE_DEVICES PYTHONPATH
  # By default the NVML helper is absent (APP_ROOT holds no pyhelpers/), and so is
  # nvidia-smi, even on a host with a GPU: each test brings the probes it wants.
  export APP_ROOT="${BATS_TEST_TMPDIR}/no app"
  hide_programs nvidia-smi
  # detection leaves nothing here (checked)
  export TMPDIR="${BATS_TEST_TMPDIR}/tmp dir"
  mkdir -p "${TMPDIR}"
  set -u
  # shellcheck source=docker/common/scripts/gpu.sh
  source "${COMMON_SCRIPTS}/gpu.sh"
}

# In a fresh bash: source gpu.sh, print "arch|name|vram|count|fp8" from the detect functions.
facts_in_new_shell() {
  bash -uc "source '${COMMON_SCRIPTS}/gpu.sh'; gpu_init_detection || exit 1
    fp8=no; gpu_supports_fp8 && fp8=yes
    printf '%s|%s|%s|%s|%s\n' \"\$(gpu_detect_sm_arch)\" \"\$(gpu_detect_name)\" \
      \"\$(gpu_detect_vram_gb)\" \"\$(gpu_detect_count)\" \"\${fp8}\""
}

@test "each nvidia-smi fixture: architecture, name, GiB, count, FP8" {
  local row fixture want arch name vram count
  for row in \
    "h100.csv=sm90|NVIDIA H100 80GB HBM3|80|1|yes" \
    "a100.csv=sm80|NVIDIA A100-SXM4-80GB|80|1|no" \
    "l40s.csv=sm89|NVIDIA L40S|45|1|yes" \
    "rtx4090.csv=sm89|NVIDIA GeForce RTX 4090|24|1|yes" \
    "b200.csv=sm100|NVIDIA B200|179|1|yes" \
    "rtx5090.csv=sm120|NVIDIA GeForce RTX 5090|32|1|yes" \
    "two-gpus.csv=sm90|NVIDIA H200|140|2|yes"; do
    fixture="${row%%=*}"
    want="${row#*=}"
    smi_prints "${fixture}"
    run --separate-stderr facts_in_new_shell
    assert_success
    assert_equal "${fixture}: ${output}" "${fixture}: ${want}"
    IFS='|' read -r arch name vram count _ <<<"${want}"
    assert_equal "${stderr}" "[gpu] GPU 0: ${name} (${arch}, ${vram} GiB), ${count} visible (from nvidia-smi)"
  done
}

@test "the probe is exactly the documented nvidia-smi query" {
  smi_prints h100.csv
  gpu_init_detection 2>/dev/null
  assert_equal "$(cat "${STUB_DIR}/nvidia-smi.calls")" \
    "--query-gpu=name,compute_cap,memory.total --format=csv,noheader,nounits"
}

@test "one detection per process: the probe runs once; children reuse the exported facts" {
  smi_prints a100.csv
  gpu_init_detection 2>/dev/null
  run gpu_detect_sm_arch
  assert_output sm80
  run gpu_detect_name
  assert_output "NVIDIA A100-SXM4-80GB"
  assert_equal "$(gpu_detect_vram_gb)$(gpu_detect_count)" 801
  run ! gpu_supports_fp8
  gpu_apply_env_defaults 2>/dev/null
  # shellcheck source=docker/common/scripts/gpu.sh
  source "${COMMON_SCRIPTS}/gpu.sh" # sourcing again keeps what was detected
  gpu_detect_sm_arch >/dev/null
  run --separate-stderr bash -uc "source '${COMMON_SCRIPTS}/gpu.sh'; gpu_detect_sm_arch; gpu_detect_count"
  assert_output $'sm80\n1'
  assert_equal "${stderr}" ""
  assert_equal "$(stub_call_count nvidia-smi)" 1
}

@test "a \$(gpu_detect_*) before any detection probes in its subshell only; no facts are left in files" {
  smi_prints h100.csv
  run --separate-stderr bash -uc "source '${COMMON_SCRIPTS}/gpu.sh'
    arch=\$(gpu_detect_sm_arch); count=\$(gpu_detect_count)
    echo \"\${arch}|\${count}|\${GPU_SM_ARCH:-unset}\"
    gpu_init_detection
    echo \"\${GPU_SM_ARCH}|\${GPU_VRAM_GB}\"; gpu_detect_name"
  assert_success
  assert_line --index 0 "sm90|1|unset" # the subshells' detections died with them
  assert_line --index 1 "sm90|80"
  assert_line --index 2 "NVIDIA H100 80GB HBM3"
  assert_equal "$(stub_call_count nvidia-smi)" 3 # two subshells, then the shell once
  assert_equal "$(ls -A "${TMPDIR}")" ""
}

@test "NVML helper present: it answers, nvidia-smi is never run, the helper runs once" {
  smi_prints a100.csv
  fake_nvml "NVIDIA H100 80GB HBM3;9;0;81559;0;4"
  gpu_init_detection 2>"${BATS_TEST_TMPDIR}/err"
  assert_equal "$(cat "${BATS_TEST_TMPDIR}/err")" \
    "[gpu] GPU 0: NVIDIA H100 80GB HBM3 (sm90, 80 GiB), 4 visible (from NVML)"
  assert_equal "$(gpu_detect_sm_arch)|$(gpu_detect_vram_gb)|$(gpu_detect_count)" "sm90|80|4"
  assert_equal "$(stub_call_count nvidia-smi)" 0
  assert_equal "$(wc -l <"${FAKE_NVML_LOG}")" 1
}

@test "only APP_ROOT's NVML helper runs: not a pyhelpers/ in the working directory or on PYTHONPATH" {
  local evil="${BATS_TEST_TMPDIR}/evil dir"
  mkdir -p "${evil}/pyhelpers"
  : >"${evil}/pyhelpers/__init__.py"
  printf '%s\n' 'print("GPU_COUNT=9"); print("GPU_NAME=EVIL")' >"${evil}/pyhelpers/gpu.py"
  fake_nvml "NVIDIA H100 80GB HBM3;9;0;81559;0;1"
  export PYTHONPATH="${evil}:${PYTHONPATH}"
  cd "${evil}"
  gpu_init_detection 2>/dev/null
  assert_equal "${DETECTED_GPU_NAME}|${GPU_COUNT}" "NVIDIA H100 80GB HBM3|1"
}

@test "NVML helper reports MIG; names with quotes come through without eval" {
  fake_nvml "NVIDIA A100 'MIG' \$(touch pwned);8;0;40960;1;1"
  run --separate-stderr gpu_init_detection
  assert_success
  [[ "${stderr}" == *"(sm80, 40 GiB, MIG enabled), 1 visible (from NVML)" ]]
  gpu_init_detection 2>/dev/null
  assert_equal "${DETECTED_GPU_NAME}" "NVIDIA A100 'MIG' \$(touch pwned)"
  [[ ! -e pwned && ! -e "${BATS_TEST_TMPDIR}/pwned" ]]
}

@test "NVML helper present but no driver: nvidia-smi answers" {
  fake_nvml "x;9;0;1;0;1"
  export FAKE_NVML_NO_DRIVER=1
  smi_prints l40s.csv
  LOG_LEVEL=debug run --separate-stderr gpu_init_detection
  assert_success
  [[ "${stderr}" == *"probes that did not answer: NVML helper: "*"no NVIDIA driver: "* ]]
  [[ "${stderr}" == *"NVIDIA L40S (sm89, 45 GiB), 1 visible (from nvidia-smi)" ]]
}

@test "no NVML library where the loader looks: the NVML helper never starts; nvidia-smi still answers" {
  fake_nvml "NVIDIA H100 80GB HBM3;9;0;81559;0;1"
  unset LD_LIBRARY_PATH # the helper and its binding are there, the driver's library is not
  make_stub python3 "exit 99"
  run --separate-stderr gpu_init_detection
  assert_success
  assert_equal "${stderr}" "[gpu] ⚠ no NVIDIA GPU found (NVML helper: no NVIDIA driver library (libnvidia-ml.so.1) found; nvidia-smi: not installed); GPU settings keep their defaults"
  assert_equal "$(stub_call_count python3)" 0
  smi_prints l40s.csv
  run --separate-stderr facts_in_new_shell
  assert_equal "${output}" "sm89|NVIDIA L40S|45|1|yes"
  assert_equal "$(stub_call_count python3)" 0
}

@test "the NVML library counts where dlopen finds it: LD_LIBRARY_PATH, the loader's cache, a system directory" {
  fake_nvml "NVIDIA H100 80GB HBM3;9;0;81559;0;1"
  local lib_dir="${LD_LIBRARY_PATH}" sys_dir="${BATS_TEST_TMPDIR}/system lib"
  LD_LIBRARY_PATH="/nowhere::${lib_dir}" run -0 --separate-stderr facts_in_new_shell
  assert_equal "${output}" "sm90|NVIDIA H100 80GB HBM3|80|1|yes"
  unset LD_LIBRARY_PATH
  # the loader's cache: a binary file that names the library among others
  printf 'ld.so-1.7.0\0libc.so.6\0/lib/libc.so.6\0libnvidia-ml.so.1\0/x/libnvidia-ml.so.1\0' >"${_NVML_LD_CACHE}"
  run -0 --separate-stderr facts_in_new_shell
  assert_equal "${output}" "sm90|NVIDIA H100 80GB HBM3|80|1|yes"
  printf 'ld.so-1.7.0\0libc.so.6\0libnvidia-ml.so.2\0' >"${_NVML_LD_CACHE}"
  run -0 --separate-stderr facts_in_new_shell
  assert_equal "${output}" "|Unknown|0|0|no"
  mkdir -p "${sys_dir}"
  : >"${sys_dir}/libnvidia-ml.so.1"
  _NVML_LIB_DIRS="/nowhere:${sys_dir}" run -0 --separate-stderr facts_in_new_shell
  assert_equal "${output}" "sm90|NVIDIA H100 80GB HBM3|80|1|yes"
  assert_equal "$(wc -l <"${FAKE_NVML_LOG}")" 3 # the helper ran where the library was found only
}

@test "a hung NVML helper costs at most GPU_QUERY_TIMEOUT, with a warning; nvidia-smi answers" {
  smi_prints rtx5090.csv
  fake_nvml "x;9;0;1;0;1"
  export FAKE_NVML_SLEEP=30 GPU_QUERY_TIMEOUT=1
  local start="${SECONDS}"
  run --separate-stderr gpu_init_detection
  assert_success
  ((SECONDS - start < 5))
  [[ "${stderr}" == *"⚠ a GPU probe hung (NVML helper: no answer within 1 s (GPU_QUERY_TIMEOUT)); used nvidia-smi instead"* ]]
  [[ "${stderr}" == *"NVIDIA GeForce RTX 5090 (sm120, 32 GiB)"* ]]
}

@test "a hung nvidia-smi returns within the limit, leaves no process, and detection goes on" {
  make_stub nvidia-smi 'exec sleep 47.25'
  export GPU_QUERY_TIMEOUT=1
  local start="${SECONDS}"
  run --separate-stderr facts_in_new_shell
  assert_success
  ((SECONDS - start < 5))
  assert_output "|Unknown|0|0|no"
  assert_equal "${stderr}" "[gpu] ⚠ no NVIDIA GPU found (NVML helper: not installed; nvidia-smi: no answer within 1 s (GPU_QUERY_TIMEOUT)); GPU settings keep their defaults"
  run ! pgrep -f "sleep 47.25"
}

@test "no GPU at all: every function answers, one warning, nothing else breaks" {
  run --separate-stderr bash -uc "source '${COMMON_SCRIPTS}/gpu.sh'
    gpu_init_detection; echo \"init \$?\"
    gpu_detect_sm_arch; echo \"arch \$?\"
    gpu_detect_name; echo \"name \$?\"
    gpu_detect_vram_gb; echo \"vram \$?\"
    gpu_detect_count; echo \"count \$?\"
    gpu_supports_fp8; echo \"fp8 \$?\"
    gpu_apply_env_defaults; echo \"defaults \$? \${TORCH_CUDA_ARCH_LIST:-none} \${PYTORCH_ALLOC_CONF:-none}\""
  assert_success
  assert_output "init 0
arch 1
Unknown
name 1
0
vram 1
0
count 1
fp8 1
defaults 0 none none"
  assert_equal "${stderr}" "[gpu] ⚠ no NVIDIA GPU found (NVML helper: not installed; nvidia-smi: not installed); GPU settings keep their defaults"
}

@test "a failing nvidia-smi: no GPU, and the warning quotes the driver's message" {
  make_stub nvidia-smi "cat '${FIXTURES}/fail.err'; exit 9"
  run --separate-stderr gpu_detect_count
  assert_failure 1
  assert_output 0
  [[ "${stderr}" == *"nvidia-smi: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."* ]]
  assert_equal "$(printf '%s\n' "${stderr}" | wc -l)" 1
}

@test "an old driver without compute_cap: asked again without it; the name table gives the arch" {
  make_stub nvidia-smi "if [[ \"\$*\" == *compute_cap* ]]; then cat '${FIXTURES}/old-driver.err'; exit 2; fi
cat '${FIXTURES}/old-driver.csv'"
  run --separate-stderr facts_in_new_shell
  assert_success
  assert_output "sm70|Tesla V100-SXM2-16GB|16|1|no"
  [[ "${stderr}" != *"⚠"* ]]
  assert_equal "$(sed -n 2p "${STUB_DIR}/nvidia-smi.calls")" \
    "--query-gpu=name,memory.total --format=csv,noheader,nounits"
}

@test "MIG GPU with no memory total: architecture and name still found, 0 GiB" {
  smi_prints mig.csv
  run --separate-stderr facts_in_new_shell
  assert_success
  assert_output "sm80|NVIDIA A100-SXM4-40GB|0|1|no"
}

@test "an unknown name without compute capability: no architecture, a warning, no guess" {
  smi_prints unknown.csv
  run --separate-stderr facts_in_new_shell
  assert_success
  assert_output "|Acme Tensor X1|32|1|no"
  [[ "${stderr}" == "[gpu] ⚠ GPU 'Acme Tensor X1' is not in the architecture table and reported no compute capability; set GPU_SM_ARCH (e.g. sm90) to choose one (nothing is probed then: set DETECTED_GPU_NAME, GPU_VRAM_GB and GPU_COUNT too)"* ]]
  export GPU_SM_ARCH=sm89 DETECTED_GPU_NAME="Acme Tensor X1" GPU_VRAM_GB=32
  run --separate-stderr facts_in_new_shell
  assert_output "sm89|Acme Tensor X1|32|1|yes"
  assert_equal "${stderr}" ""
  assert_equal "$(stub_call_count nvidia-smi)" 1
}

@test "GPU_SM_ARCH in the environment answers first: no probe at all, VRAM 0 and count 1 unless set" {
  smi_prints a100.csv
  fake_nvml "NVIDIA A100-SXM4-80GB;8;0;81920;0;1"
  export GPU_SM_ARCH=sm_90 DETECTED_GPU_NAME="My GPU"
  run --separate-stderr facts_in_new_shell
  assert_success
  assert_output "sm90|My GPU|0|1|yes"
  assert_equal "${stderr}" ""
  unset DETECTED_GPU_NAME
  run --separate-stderr facts_in_new_shell
  assert_output "sm90|Unknown|0|1|yes"
  export GPU_VRAM_GB=012 GPU_COUNT=8
  run --separate-stderr facts_in_new_shell
  assert_output "sm90|Unknown|12|8|yes"
  assert_equal "${stderr}" ""
  assert_equal "$(stub_call_count nvidia-smi)" 0
  [[ ! -e "${FAKE_NVML_LOG}" ]] # the helper never even started
  # a name alone does not answer: the probes run and the name wins
  unset GPU_SM_ARCH GPU_VRAM_GB GPU_COUNT
  export DETECTED_GPU_NAME="My GPU" FAKE_NVML_NO_DRIVER=1
  run --separate-stderr facts_in_new_shell
  assert_output "sm80|My GPU|80|1|no"
  assert_equal "$(stub_call_count nvidia-smi)" 1
}

@test "invalid GPU_QUERY_TIMEOUT: a clear error, status 1, and no probe runs" {
  smi_prints h100.csv
  local bad
  # shellcheck disable=SC2016 # a command substitution must stay literal text
  for bad in abc 0 -1 10s "1 0" '$(id)'; do
    GPU_QUERY_TIMEOUT="${bad}" run --separate-stderr gpu_detect_sm_arch
    assert_failure 1
    assert_output ""
    assert_equal "${stderr}" "[gpu] ✗ GPU_QUERY_TIMEOUT '${bad}' is not a number of seconds; use a positive number such as 10 (the default)"
    GPU_QUERY_TIMEOUT="${bad}" run --separate-stderr gpu_init_detection
    assert_failure 1
  done
  assert_equal "$(stub_call_count nvidia-smi)" 0
  GPU_QUERY_TIMEOUT=2.5 run --separate-stderr gpu_detect_sm_arch
  assert_output sm90
}

@test "invalid GPU_SM_ARCH, GPU_COUNT, GPU_VRAM_GB: each named, status 1" {
  GPU_SM_ARCH=hopper GPU_COUNT=two GPU_VRAM_GB=80G run --separate-stderr gpu_init_detection
  assert_failure 1
  assert_equal "${stderr}" "[gpu] ✗ GPU_SM_ARCH 'hopper' is not an architecture; use the form sm80, sm86, sm89, sm90, sm100, sm120 (or unset it to detect)
[gpu] ✗ GPU_VRAM_GB '80G' is not a whole number; use e.g. 0, 1, 80 (or unset it to detect)
[gpu] ✗ GPU_COUNT 'two' is not a whole number; use e.g. 0, 1, 80 (or unset it to detect)"
}

@test "gpu_sm_to_torch_arch for every architecture; bad input is an error" {
  local pair
  for pair in sm70=7.0 sm75=7.5 sm80=8.0 sm86=8.6 sm89=8.9 sm90=9.0 sm100=10.0 sm103=10.3 \
    sm120=12.0 sm_90=9.0; do
    run gpu_sm_to_torch_arch "${pair%=*}"
    assert_output "${pair#*=}"
  done
  for pair in 90 smx "" sm9 sm1200; do
    run --separate-stderr gpu_sm_to_torch_arch "${pair}"
    assert_failure 1
    assert_equal "${stderr}" "[gpu] ✗ architecture '${pair}' is not valid; use the form sm80, sm90, sm120"
  done
}

@test "gpu_supports_fp8: 8.9 and above" {
  local sm
  for sm in sm89 sm90 sm100 sm120; do run -0 gpu_supports_fp8 "${sm}"; done
  for sm in sm70 sm75 sm80 sm86; do run -1 gpu_supports_fp8 "${sm}"; done
  run --separate-stderr gpu_supports_fp8 "9.0"
  assert_failure 1
  [[ "${stderr}" == *"architecture '9.0' is not valid"* ]]
}

@test "gpu_name_to_sm_arch: every GPU of NVIDIA's table by its nvidia-smi name, no guess for others" {
  local name want count=0
  while IFS='=' read -r name want; do
    [[ -n "${name}" && "${name}" != "#"* ]] || continue
    run gpu_name_to_sm_arch "${name}"
    assert_equal "${name}: ${output}" "${name}: ${want}"
    count=$((count + 1))
  done <"${FIXTURES}/names.txt"
  ((count > 100))
  for name in "Acme Tensor X1" "AMD Instinct MI300X" "NVIDIA A1000X" "NVIDIA GeForce GTX 1080 Ti" \
    "Tesla P100-PCIE-16GB" "Quadro P4000" "NVIDIA TITAN Xp" "Tesla K80" "NVIDIA Graphics Device" \
    "NVIDIA RTX 5000" "NVIDIA GeForce RTX 4000" ""; do
    run gpu_name_to_sm_arch "${name}"
    assert_equal "${name}: ${status} ${output}" "${name}: 1 "
  done
}

@test "gpu_apply_env_defaults: A100 gets all three, L40S two, RTX 4090 only the arch list" {
  local row
  for row in "a100.csv=8.0|expandable_segments:True|1" "l40s.csv=8.9|expandable_segments:True|-" \
    "b200.csv=10.0|expandable_segments:True|-" "rtx4090.csv=8.9|-|-"; do
    smi_prints "${row%%=*}"
    run --separate-stderr bash -uc "source '${COMMON_SCRIPTS}/gpu.sh'; gpu_apply_env_defaults
      bash -c 'printf %s \"\${TORCH_CUDA_ARCH_LIST:--}|\${PYTORCH_ALLOC_CONF:--}|\${CUDA_DEVICE_MAX_CONNECTIONS:--}\"'"
    assert_success
    assert_equal "${row%%=*}: ${output}" "${row%%=*}: ${row#*=}"
  done
}

@test "gpu_apply_env_defaults: a value the user set always wins" {
  smi_prints a100.csv
  export TORCH_CUDA_ARCH_LIST="8.0;9.0" PYTORCH_CUDA_ALLOC_CONF=garbage_collection_threshold:0.8 \
    CUDA_DEVICE_MAX_CONNECTIONS=8
  gpu_apply_env_defaults 2>/dev/null
  assert_equal "${TORCH_CUDA_ARCH_LIST}|${PYTORCH_ALLOC_CONF:-unset}|${CUDA_DEVICE_MAX_CONNECTIONS}" \
    "8.0;9.0|unset|8"
  unset PYTORCH_CUDA_ALLOC_CONF
  export PYTORCH_ALLOC_CONF=mine
  gpu_apply_env_defaults 2>/dev/null
  assert_equal "${PYTORCH_ALLOC_CONF}" mine
}

@test "library sets no shell options and survives set -u with nothing set" {
  run bash -c "set -u; before=\$(set +o); source '${COMMON_SCRIPTS}/gpu.sh'; source '${COMMON_SCRIPTS}/gpu.sh'
    gpu_apply_env_defaults 2>/dev/null; [[ \"\$(set +o)\" == \"\${before}\" ]] && echo same"
  assert_success
  assert_output same
}
