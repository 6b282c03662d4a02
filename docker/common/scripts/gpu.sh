# shellcheck shell=bash
# GPU facts (architecture, name, memory, count) and the GPU-dependent defaults.
#
# Detection runs once per process: gpu_init_detection asks, first that answers wins,
#   1. the environment: an explicit GPU_SM_ARCH answers, and nothing is probed at all
#      (DETECTED_GPU_NAME, else Unknown; GPU_VRAM_GB, else 0; GPU_COUNT, else 1); so
#      does the set of all four facts an earlier gpu_init_detection exports (no GPU
#      included). DETECTED_GPU_NAME alone wins over a probed name, but probes still run
#   2. the NVML helper: python3 -m pyhelpers.gpu (under APP_ROOT; respects CUDA_VISIBLE_DEVICES)
#   3. nvidia-smi --query-gpu=name,compute_cap,memory.total (lists every GPU of the driver)
#   4. the GPU name → architecture table (gpu_name_to_sm_arch)
# then exports GPU_SM_ARCH, DETECTED_GPU_NAME, GPU_VRAM_GB and GPU_COUNT. Every probe runs
# under `timeout GPU_QUERY_TIMEOUT`. Later calls, and the bootstrap's child processes, answer
# from the exported facts and spawn nothing. The bootstrap detects first (startup_bootstrap);
# a gpu_detect_* run inside $(...) before any detection probes in that subshell, whose
# variables die with it.
#
# A library: functions only, no options set, safe under `set -u`; sourcing it again
# keeps what was detected.

# shellcheck source=docker/common/scripts/logs.sh
source "${BASH_SOURCE[0]%/*}/logs.sh"

# The seconds each GPU probe may take when GPU_QUERY_TIMEOUT is unset (the one definition).
GPU_QUERY_TIMEOUT_DEFAULT=10
# shellcheck source=docker/common/scripts/gpu_probe.sh
source "${BASH_SOURCE[0]%/*}/gpu_probe.sh"

# Detect once in this process and export the facts. No GPU is not an error: the
# facts become '' / Unknown / 0 / 0 and one warning says why.
# Globals:   GPU_QUERY_TIMEOUT, APP_ROOT, PYTHONPATH, GPU_SM_ARCH, DETECTED_GPU_NAME,
#            GPU_VRAM_GB, GPU_COUNT (read; set values win), then the four exported;
#            _GPU_DETECTION_DONE (set to 1)
# Outputs:   one info line (the GPU) or one warning (no GPU); errors for bad settings
# Returns:   0 when detection ran (GPU or not), 1 when a setting above is invalid
gpu_init_detection() {
  [[ "${_GPU_DETECTION_DONE:-}" == 1 ]] && return 0
  _gpu_check_config || return 1
  local -A facts=([name]="" [cap]="" [mib]="" [count]="" [mig]="" [timed_out]=0)
  local reasons=() from="" arch
  if [[ -n "${GPU_SM_ARCH:-}" ]]; then
    from="environment"
    facts[count]=1 # an architecture given means a GPU; GPU_COUNT may say how many
  elif [[ -n "${GPU_SM_ARCH+x}" && -n "${DETECTED_GPU_NAME:-}" && -n "${GPU_VRAM_GB:-}" && -n "${GPU_COUNT:-}" ]]; then
    from="environment" # an earlier detection's exports (a child process of the bootstrap)
  elif _gpu_probe_nvml facts reasons; then
    from="NVML"
  elif _gpu_probe_smi facts reasons; then
    from="nvidia-smi"
  fi
  local name="${facts[name]}" cap="${facts[cap]}" mib="${facts[mib]}" count="${facts[count]}"

  arch="${GPU_SM_ARCH:-}"
  arch="${arch/sm_/sm}"
  if [[ -z "${arch}" && "${cap}" =~ ^([0-9]+)\.([0-9])$ ]]; then
    arch="sm${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
  elif [[ -z "${arch}" && "${from}" != environment && -n "${DETECTED_GPU_NAME:-${name}}" ]]; then
    arch="$(gpu_name_to_sm_arch "${DETECTED_GPU_NAME:-${name}}")" ||
      log_warn "[gpu]" "GPU '${DETECTED_GPU_NAME:-${name}}' is not in the architecture table and reported no compute capability; set GPU_SM_ARCH (e.g. sm90) to choose one (nothing is probed then: set DETECTED_GPU_NAME, GPU_VRAM_GB and GPU_COUNT too)"
  fi
  if [[ "${mib}" =~ ^[0-9]+$ ]]; then
    mib="$(((10#${mib} + 512) / 1024))"
  else
    mib=0
  fi
  export GPU_SM_ARCH="${arch}"
  export DETECTED_GPU_NAME="${DETECTED_GPU_NAME:-${name:-Unknown}}"
  export GPU_VRAM_GB="$((10#${GPU_VRAM_GB:-${mib}}))"
  export GPU_COUNT="$((10#${GPU_COUNT:-${count:-0}}))"
  _GPU_DETECTION_DONE=1

  local why=""
  ((${#reasons[@]} == 0)) || why="$(printf '%s; ' "${reasons[@]}")"
  why="${why%; }"
  if [[ "${from}" == environment ]]; then
    log_debug "[gpu]" "GPU facts from the environment, nothing probed: ${DETECTED_GPU_NAME} x${GPU_COUNT}"
  elif ((GPU_COUNT == 0)); then
    log_warn "[gpu]" "no NVIDIA GPU found (${why}); GPU settings keep their defaults"
  else
    if ((facts[timed_out])); then
      log_warn "[gpu]" "a GPU probe hung (${why}); used ${from} instead"
    elif [[ -n "${why}" ]]; then
      log_debug "[gpu]" "probes that did not answer: ${why}"
    fi
    local mig_note=""
    [[ "${facts[mig]}" == 1 ]] && mig_note=", MIG enabled"
    log_info "[gpu]" "GPU 0: ${DETECTED_GPU_NAME} (${GPU_SM_ARCH:-unknown architecture}, ${GPU_VRAM_GB} GiB${mig_note}), ${GPU_COUNT} visible (from ${from})"
  fi
  return 0
}

# Print the SM architecture of GPU 0 (sm80, sm86, sm89, sm90, sm100, sm120 …).
# Globals:   GPU_SM_ARCH (read; wins when set) and those of gpu_init_detection
# Outputs:   the architecture on stdout; nothing when unknown
# Returns:   0 when known, 1 when no GPU, unknown, or a setting is invalid
gpu_detect_sm_arch() {
  gpu_init_detection || return 1
  [[ -n "${GPU_SM_ARCH:-}" ]] || return 1
  printf '%s\n' "${GPU_SM_ARCH}"
}

# Print the name of GPU 0 (e.g. NVIDIA H100 80GB HBM3; Unknown when none).
# Globals:   DETECTED_GPU_NAME (read; wins when set) and those of gpu_init_detection
# Outputs:   the name on stdout
# Returns:   0 when a GPU is visible, 1 otherwise
gpu_detect_name() {
  gpu_init_detection || return 1
  printf '%s\n' "${DETECTED_GPU_NAME:-Unknown}"
  ((${GPU_COUNT:-0} > 0))
}

# Print the total memory of GPU 0 in GiB, rounded to an integer (0 when none).
# Globals:   GPU_VRAM_GB (read; wins when set) and those of gpu_init_detection
# Outputs:   the number on stdout
# Returns:   0 when a GPU is visible, 1 otherwise
gpu_detect_vram_gb() {
  gpu_init_detection || return 1
  printf '%s\n' "${GPU_VRAM_GB:-0}"
  ((${GPU_COUNT:-0} > 0))
}

# Print how many GPUs this process can see (0 when none).
# Globals:   GPU_COUNT (read; wins when set) and those of gpu_init_detection
# Outputs:   the number on stdout
# Returns:   0 when at least one GPU is visible, 1 otherwise
gpu_detect_count() {
  gpu_init_detection || return 1
  printf '%s\n' "${GPU_COUNT:-0}"
  ((${GPU_COUNT:-0} > 0))
}

# Whether an architecture runs FP8: compute capability 8.9 and above (Ada, Hopper,
# Blackwell).
# Arguments: [sm] an architecture such as sm90 (default: the detected one)
# Outputs:   an error on stderr when sm is not of the form sm<digits>
# Returns:   0 when FP8 is supported, 1 otherwise (or no GPU, or a bad argument)
gpu_supports_fp8() {
  local sm="${1:-}"
  if (($# == 0)); then
    gpu_init_detection || return 1
    sm="${GPU_SM_ARCH:-}"
    [[ -n "${sm}" ]] || return 1
  fi
  if [[ ! "${sm}" =~ ^sm_?([0-9]{2,3})$ ]]; then
    log_err "[gpu]" "architecture '${sm}' is not valid; use the form sm89, sm90, sm120"
    return 1
  fi
  ((10#${BASH_REMATCH[1]} >= 89))
}

# Convert an SM architecture to its TORCH_CUDA_ARCH_LIST form: sm90 → 9.0, sm120 → 12.0.
# Arguments: sm
# Outputs:   the compute capability on stdout; an error on stderr when sm is not valid
# Returns:   0 on success, 1 on a bad argument
gpu_sm_to_torch_arch() {
  local sm="${1:-}"
  if [[ ! "${sm}" =~ ^sm_?([1-9][0-9]?)([0-9])$ ]]; then
    log_err "[gpu]" "architecture '${sm}' is not valid; use the form sm80, sm90, sm120"
    return 1
  fi
  printf '%s.%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
}

# Map a GPU name to its architecture; no guess for other names. The fallback for
# drivers that report no compute capability (before 510) and names given by hand.
# Source: NVIDIA's compute capability table, https://developer.nvidia.com/cuda-gpus
# (every GPU it lists: 7.5 to 12.1, Jetson included), plus Volta (7.0) and Jetson
# Xavier (7.2) from its legacy page, https://developer.nvidia.com/cuda-legacy-gpus.
# Names are matched as nvidia-smi and NVML print them: Jetson Orin reports
# "Orin (nvgpu)", Jetson Thor (T5000, T4000) "NVIDIA Thor", DGX Spark "NVIDIA GB10";
# regional variants carry a suffix (RTX 4090 D, RTX 5090 D v2, RTX PRO 6000D, H20, H800,
# A800, L20, L2). Thor is sm110 since CUDA 13 (sm101 before it).
# Arguments: name (as NVML or nvidia-smi print it; case does not matter)
# Outputs:   the architecture on stdout when the name is known
# Returns:   0 when known, 1 otherwise
gpu_name_to_sm_arch() {
  # Checked in order: the first match wins (word-like names first, so that
  # "Quadro RTX 5000" is Turing and "RTX 5000 Ada" is Ada, not GeForce 50xx; the
  # exceptions of a series before the series: RTX 3050 A is Ada, RTX 2050 Ampere).
  local table=(
    'GB10=sm121'
    'THOR|JETSON T[45]000=sm110'
    'BLACKWELL|RTX PRO [0-9]+D?|RTX 6000D=sm120'
    'ADA|RTX 3050 A=sm89'
    'QUADRO RTX [0-9]+|TITAN RTX=sm75'
    'RTX 2050=sm86'
    'RTX 50[5-9]0=sm120'
    'RTX 40[5-9]0=sm89'
    'RTX 30[5-9]0=sm86'
    'RTX 20[6-8]0|GTX 16[3-6]0=sm75'
    'GB300|B300=sm103'
    'GB200|B200|B100=sm100'
    'GH200|H100|H200|H800|H20=sm90'
    'L4|L40|L40S|L40G|L20|L2=sm89'
    'ORIN=sm87'
    'A100|A100X|A800|A30|A30X=sm80'
    'A10|A10G|A10M|A40|A16|A2|RTX A[0-9]+=sm86'
    'T4|T400|T500|T550|T600|T1000|T1200|T2000=sm75'
    'XAVIER=sm72'
    'V100|V100S|TITAN V|GV100=sm70'
  )
  local row
  for row in "${table[@]}"; do
    if _gpu_name_matches "${1:-}" "${row%=*}"; then
      printf '%s\n' "${row##*=}"
      return 0
    fi
  done
  return 1
}

# Set GPU-dependent defaults; a value the user already set always wins:
#   TORCH_CUDA_ARCH_LIST        from the detected architecture (sm90 → 9.0)
#   PYTORCH_ALLOC_CONF          expandable_segments:True on A100/H100/H200/L40/L40S/B200-class
#                               GPUs (also left alone when PYTORCH_CUDA_ALLOC_CONF is set)
#   CUDA_DEVICE_MAX_CONNECTIONS 1 on A100 (and A800)
# Globals:   the detected facts (read), the three variables above (exported when set here)
# Outputs:   one info line naming what was set
# Returns:   0, or 1 when detection settings are invalid
gpu_apply_env_defaults() {
  gpu_init_detection || return 1
  local name="${DETECTED_GPU_NAME:-}" set_here=()
  if [[ -z "${TORCH_CUDA_ARCH_LIST:-}" && -n "${GPU_SM_ARCH:-}" ]]; then
    TORCH_CUDA_ARCH_LIST="$(gpu_sm_to_torch_arch "${GPU_SM_ARCH}")" || return 1
    export TORCH_CUDA_ARCH_LIST
    set_here+=("TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST}")
  fi
  if [[ -z "${PYTORCH_ALLOC_CONF:-}${PYTORCH_CUDA_ALLOC_CONF:-}" ]] &&
    _gpu_name_matches "${name}" 'A100|A800|H100|H200|H800|GH200|L40|L40S|B100|B200|GB200|B300|GB300'; then
    export PYTORCH_ALLOC_CONF=expandable_segments:True
    set_here+=("PYTORCH_ALLOC_CONF=${PYTORCH_ALLOC_CONF}")
  fi
  if [[ -z "${CUDA_DEVICE_MAX_CONNECTIONS:-}" ]] && _gpu_name_matches "${name}" 'A100|A800'; then
    export CUDA_DEVICE_MAX_CONNECTIONS=1
    set_here+=("CUDA_DEVICE_MAX_CONNECTIONS=1")
  fi
  ((${#set_here[@]} == 0)) || log_info "[gpu]" "defaults for ${name}: ${set_here[*]}"
  return 0
}

# Whether a GPU name contains one of the alternatives as a whole word.
# Arguments: name alternatives (an extended regex such as 'A100|H100', upper case)
# Returns:   0 on a match
_gpu_name_matches() {
  local name=" ${1^^} " pattern="[^A-Z0-9](${2})[^A-Z0-9]"
  [[ "${name}" =~ ${pattern} ]]
}

# Check the detection settings; report every invalid one.
# Globals:   GPU_QUERY_TIMEOUT, GPU_SM_ARCH, GPU_VRAM_GB, GPU_COUNT (read)
# Outputs:   one error per invalid setting, naming it, its value and what is valid
# Returns:   0 when all are valid or unset, 1 otherwise
_gpu_check_config() {
  local ok=0 var
  if [[ ! "${GPU_QUERY_TIMEOUT:-${GPU_QUERY_TIMEOUT_DEFAULT}}" =~ ^[0-9]+(\.[0-9]+)?$ || "${GPU_QUERY_TIMEOUT:-${GPU_QUERY_TIMEOUT_DEFAULT}}" =~ ^0+(\.0+)?$ ]]; then
    log_err "[gpu]" "GPU_QUERY_TIMEOUT '${GPU_QUERY_TIMEOUT}' is not a number of seconds; use a positive number such as ${GPU_QUERY_TIMEOUT_DEFAULT} (the default)"
    ok=1
  fi
  if [[ -n "${GPU_SM_ARCH:-}" && ! "${GPU_SM_ARCH}" =~ ^sm_?[1-9][0-9]{1,2}$ ]]; then
    log_err "[gpu]" "GPU_SM_ARCH '${GPU_SM_ARCH}' is not an architecture; use the form sm80, sm86, sm89, sm90, sm100, sm120 (or unset it to detect)"
    ok=1
  fi
  for var in GPU_VRAM_GB GPU_COUNT; do
    if [[ -n "${!var:-}" && ! "${!var}" =~ ^[0-9]+$ ]]; then
      log_err "[gpu]" "${var} '${!var}' is not a whole number; use e.g. 0, 1, 80 (or unset it to detect)"
      ok=1
    fi
  done
  return "${ok}"
}
