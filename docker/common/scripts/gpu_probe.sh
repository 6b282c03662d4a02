# shellcheck shell=bash
# The two GPU probes gpu_init_detection (gpu.sh) asks; private to gpu.sh, which sources this
# file. Each runs under `timeout GPU_QUERY_TIMEOUT` and fills the associative array whose name
# it is given (name, cap, mib, count, mig; timed_out=1 when it hung) and, when it gets no
# answer, appends the reason to the array whose name it is given: the caller passes both by
# name, nothing is set behind its back.
#
# A library: functions only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/util.sh
source "${BASH_SOURCE[0]%/*}/util.sh"

# Ask the NVML helper (python3 -m pyhelpers.gpu, one KEY=value a line, never evaluated).
# Globals:   APP_ROOT, PYTHONPATH, GPU_QUERY_TIMEOUT (read)
# Arguments: facts (the name of an associative array), reasons (the name of an array)
# Returns:   0 when it reported at least one GPU, 1 otherwise
_gpu_probe_nvml() {
  local -n _gpu_nvml_facts="$1" _gpu_nvml_why="$2"
  local root out status=0 line key value
  root="$(util_app_root)"
  if [[ ! -f "${root}/pyhelpers/gpu.py" ]] || ! command -v python3 >/dev/null 2>&1; then
    _gpu_nvml_why+=("NVML helper: not installed")
    return 1
  fi
  if ! _gpu_nvml_library_found; then # the helper could only fail: no Python started for it
    _gpu_nvml_why+=("NVML helper: no NVIDIA driver library (libnvidia-ml.so.1) found")
    return 1
  fi
  out="$(util_run_python "${GPU_QUERY_TIMEOUT:-${GPU_QUERY_TIMEOUT_DEFAULT}}" pyhelpers.gpu --format shell 2>&1)" || status=$?
  if ((status != 0)); then
    _gpu_note_failure "$1" "$2" "NVML helper" "${status}" "${out#\[gpu\] ✗ }"
    return 1
  fi
  while IFS='=' read -r key value; do
    case "${key}" in
      GPU_COUNT) _gpu_nvml_facts["count"]="${value}" ;;
      GPU_NAME) _gpu_nvml_facts["name"]="${value}" ;;
      GPU_COMPUTE_CAP) _gpu_nvml_facts["cap"]="${value}" ;;
      GPU_MEMORY_MIB) _gpu_nvml_facts["mib"]="${value}" ;;
      GPU_MIG) _gpu_nvml_facts["mig"]="${value}" ;;
    esac
  done <<<"${out}"
  [[ "${_gpu_nvml_facts["count"]:-}" =~ ^[1-9][0-9]*$ ]] && return 0
  _gpu_nvml_why+=("NVML helper: unexpected output")
  _gpu_nvml_facts["count"]=""
  return 1
}

# Whether the dynamic loader would find NVML's library, libnvidia-ml.so.1, which the NVIDIA
# container runtime mounts (and enters in the loader's cache) when a container gets GPUs: in a
# directory of LD_LIBRARY_PATH, in the loader's cache or in a system library directory, the
# places dlopen searches. Without it NVML cannot answer, so the NVML helper is not started
# (a Python process less on every start without a GPU); nvidia-smi is still asked.
# Globals:   LD_LIBRARY_PATH (read); _NVML_LD_CACHE (default /etc/ld.so.cache) and
#            _NVML_LIB_DIRS (':'-separated; default the system library directories) for tests
# Returns:   0 when the library is there, 1 otherwise
_gpu_nvml_library_found() {
  local lib=libnvidia-ml.so.1 cache="${_NVML_LD_CACHE:-/etc/ld.so.cache}" dir dirs=() system=()
  IFS=: read -r -a dirs <<<"${LD_LIBRARY_PATH:-}"
  if [[ -n "${_NVML_LIB_DIRS+x}" ]]; then
    IFS=: read -r -a system <<<"${_NVML_LIB_DIRS}"
  else
    system=(/lib/*-linux-gnu /usr/lib/*-linux-gnu /lib64 /usr/lib64 /lib /usr/lib)
  fi
  for dir in "${dirs[@]}" "${system[@]}"; do
    [[ -n "${dir}" && -e "${dir}/${lib}" ]] && return 0
  done
  [[ -r "${cache}" ]] && grep -qaF "${lib}" "${cache}"
}

# Ask nvidia-smi; a driver too old for compute_cap is asked again without it.
# Globals:   GPU_QUERY_TIMEOUT (read)
# Arguments: facts (the name of an associative array), reasons (the name of an array)
# Returns:   0 when it listed at least one GPU, 1 otherwise
_gpu_probe_smi() {
  local -n _gpu_smi_facts="$1" _gpu_smi_why="$2"
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    _gpu_smi_why+=("nvidia-smi: not installed")
    return 1
  fi
  local fields=name,compute_cap,memory.total out status=0 line limit
  limit="${GPU_QUERY_TIMEOUT:-${GPU_QUERY_TIMEOUT_DEFAULT}}"
  out="$(timeout -k 2 "${limit}" nvidia-smi --query-gpu="${fields}" --format=csv,noheader,nounits 2>&1)" ||
    status=$?
  if ((status != 0 && status != 124 && status != 137)) && [[ "${out}" == *compute_cap* ]]; then
    log_debug "[gpu]" "nvidia-smi does not know compute_cap (driver before 510); asking without it"
    fields=name,memory.total
    status=0
    out="$(timeout -k 2 "${limit}" nvidia-smi --query-gpu="${fields}" --format=csv,noheader,nounits 2>&1)" ||
      status=$?
  fi
  if ((status != 0)); then
    _gpu_note_failure "$1" "$2" nvidia-smi "${status}" "${out}"
    return 1
  fi
  local first=() rows=0
  while IFS= read -r line; do
    [[ "${line}" == *[![:space:]]* ]] || continue
    rows=$((rows + 1))
    ((rows == 1)) && IFS=',' read -r -a first <<<"${line}"
  done <<<"${out}"
  if ((rows == 0)); then
    _gpu_smi_why+=("nvidia-smi: no GPU listed")
    return 1
  fi
  local i
  for i in "${!first[@]}"; do # trim the blanks around each CSV field
    util_trim "first[${i}]"
  done
  _gpu_smi_facts["name"]="${first[0]:-}"
  if [[ "${fields}" == *compute_cap* ]]; then
    _gpu_smi_facts["cap"]="${first[1]:-}"
    _gpu_smi_facts["mib"]="${first[2]:-}"
  else
    _gpu_smi_facts["mib"]="${first[1]:-}"
  fi
  _gpu_smi_facts["count"]="${rows}"
}

# Record why a probe gave no answer.
# Globals:   GPU_QUERY_TIMEOUT (read)
# Arguments: facts (the name of an associative array: timed_out=1 on a time-out), reasons (the
#            name of an array), probe, status, output
_gpu_note_failure() {
  local -n _gpu_fail_facts="$1" _gpu_fail_why="$2"
  if (($4 == 124 || $4 == 137)); then
    _gpu_fail_why+=("$3: no answer within ${GPU_QUERY_TIMEOUT:-${GPU_QUERY_TIMEOUT_DEFAULT}} s (GPU_QUERY_TIMEOUT)")
    _gpu_fail_facts["timed_out"]=1
  else
    local last="${5##*$'\n'}" # the message (under LOG_LEVEL=debug: the traceback's last line)
    _gpu_fail_why+=("$3: ${last:-exit status $4}")
  fi
}
