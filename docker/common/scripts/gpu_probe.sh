# shellcheck shell=bash
# shellcheck disable=SC2034 # the probes set their caller's locals (bash dynamic scope)
# The probes behind gpu_init_detection (gpu.sh): the NVML helper and nvidia-smi, each
# under `timeout GPU_QUERY_TIMEOUT`. Private to gpu.sh, which sources this file: each
# probe fills its caller's locals (name, cap, mib, count, mig) and, when it gets no
# answer, appends the reason to the caller's `reasons` array (and sets `timed_out`).
#
# A library: functions only, no options set, safe under `set -u`.

# Ask the NVML helper. On success sets the caller's name, cap, mib, count and mig.
# Globals:   APP_ROOT, PYTHONPATH, GPU_QUERY_TIMEOUT (read); reasons, timed_out (the
#            caller's locals, appended to on failure)
# Returns:   0 when it reported at least one GPU, 1 otherwise
_gpu_probe_nvml() {
  local root="${APP_ROOT:-/app}" out status=0 line key value
  if [[ ! -f "${root}/pyhelpers/gpu.py" ]] || ! command -v python3 >/dev/null 2>&1; then
    reasons+=("NVML helper: not installed")
    return 1
  fi
  out="$(PYTHONPATH="${root}${PYTHONPATH:+:${PYTHONPATH}}" timeout -k 2 "${GPU_QUERY_TIMEOUT:-10}" \
    python3 -m pyhelpers.gpu --format shell 2>&1)" || status=$?
  if ((status != 0)); then
    _gpu_note_failure "NVML helper" "${status}" "${out#\[gpu\] ✗ }"
    return 1
  fi
  while IFS= read -r line; do
    [[ "${line}" =~ ^(GPU_[A-Z_]+)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    # The helper quotes with Python's shlex.quote: undo it instead of eval'ing the output.
    [[ "${value}" =~ ^\'(.*)\'$ ]] && value="${BASH_REMATCH[1]//\'\"\'\"\'/\'}"
    case "${key}" in
      GPU_COUNT) count="${value}" ;;
      GPU_NAME) name="${value}" ;;
      GPU_COMPUTE_CAP) cap="${value}" ;;
      GPU_MEMORY_MIB) mib="${value}" ;;
      GPU_MIG) mig="${value}" ;;
    esac
  done <<<"${out}"
  [[ "${count}" =~ ^[1-9][0-9]*$ ]] && return 0
  reasons+=("NVML helper: unexpected output")
  count=""
  return 1
}

# Ask nvidia-smi; a driver too old for compute_cap is asked again without it. On
# success sets the caller's name, cap, mib and count.
# Globals:   GPU_QUERY_TIMEOUT (read); reasons, timed_out (the caller's locals)
# Returns:   0 when it listed at least one GPU, 1 otherwise
_gpu_probe_smi() {
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    reasons+=("nvidia-smi: not installed")
    return 1
  fi
  local fields=name,compute_cap,memory.total out status=0 line
  out="$(timeout -k 2 "${GPU_QUERY_TIMEOUT:-10}" nvidia-smi --query-gpu="${fields}" \
    --format=csv,noheader,nounits 2>&1)" || status=$?
  if ((status != 0 && status != 124 && status != 137)) && [[ "${out}" == *compute_cap* ]]; then
    log_debug "[gpu]" "nvidia-smi does not know compute_cap (driver before 510); asking without it"
    fields=name,memory.total
    status=0
    out="$(timeout -k 2 "${GPU_QUERY_TIMEOUT:-10}" nvidia-smi --query-gpu="${fields}" \
      --format=csv,noheader,nounits 2>&1)" || status=$?
  fi
  if ((status != 0)); then
    _gpu_note_failure nvidia-smi "${status}" "${out}"
    return 1
  fi
  local first=() rows=0
  while IFS= read -r line; do
    [[ "${line}" == *[![:space:]]* ]] || continue
    rows=$((rows + 1))
    ((rows == 1)) && IFS=',' read -r -a first <<<"${line}"
  done <<<"${out}"
  if ((rows == 0)); then
    reasons+=("nvidia-smi: no GPU listed")
    return 1
  fi
  local i
  for i in "${!first[@]}"; do # trim the blanks around each CSV field
    first[i]="${first[i]#"${first[i]%%[![:space:]]*}"}"
    first[i]="${first[i]%"${first[i]##*[![:space:]]}"}"
  done
  name="${first[0]:-}"
  if [[ "${fields}" == *compute_cap* ]]; then
    cap="${first[1]:-}"
    mib="${first[2]:-}"
  else
    mib="${first[1]:-}"
  fi
  count="${rows}"
}

# Record why a probe gave no answer.
# Globals:   GPU_QUERY_TIMEOUT (read); reasons, timed_out (the caller's locals)
# Arguments: probe status output
_gpu_note_failure() {
  if (($2 == 124 || $2 == 137)); then
    reasons+=("$1: no answer within ${GPU_QUERY_TIMEOUT:-10} s (GPU_QUERY_TIMEOUT)")
    timed_out=1
  else
    local last="${3##*$'\n'}" # the message (under LOG_LEVEL=debug: the traceback's last line)
    reasons+=("$1: ${last:-exit status $2}")
  fi
}
