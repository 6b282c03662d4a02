# shellcheck shell=bash
# shellcheck disable=SC2034 # the probes set their caller's locals (bash dynamic scope)
# What gpu_init_detection (gpu.sh) builds on; private to gpu.sh, which sources this file.
#   The probes: the NVML helper and nvidia-smi, each under `timeout GPU_QUERY_TIMEOUT`.
#     Each fills its caller's locals (name, cap, mib, count, mig) and, when it gets no
#     answer, appends the reason to the caller's `reasons` array (and sets `timed_out`).
#   The per-process cache: a detection that ran in a subshell ($(gpu_detect_*) first)
#     leaves the four facts in ${TMPDIR:-/tmp}/gpu-facts.<uid>/<pid>.<start time>, a
#     private directory (mode 700, owned by the user). $$ and the start time of the
#     shell are the same in all its subshells and name no other process, so only this
#     shell finds the file. Files of processes that have ended are removed by the next
#     save; the shell itself removes its file once it has read the facts.
#
# A library: functions only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/util.sh
source "${BASH_SOURCE[0]%/*}/util.sh"

# Ask the NVML helper. On success sets the caller's name, cap, mib, count and mig.
# Globals:   APP_ROOT, PYTHONPATH, GPU_QUERY_TIMEOUT (read); reasons, timed_out (the
#            caller's locals, appended to on failure)
# Returns:   0 when it reported at least one GPU, 1 otherwise
_gpu_probe_nvml() {
  local root out status=0 line key value
  root="$(util_app_root)"
  if [[ ! -f "${root}/pyhelpers/gpu.py" ]] || ! command -v python3 >/dev/null 2>&1; then
    reasons+=("NVML helper: not installed")
    return 1
  fi
  out="$(util_run_pyhelper "${GPU_QUERY_TIMEOUT:-10}" gpu --format shell 2>&1)" || status=$?
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
    util_trim "first[${i}]"
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

# Set the caller's `cache` to this shell's cache file (see the top of this file).
# Returns:   1 when /proc cannot tell the shell's start time (then there is no cache)
_gpu_cache_path() {
  local start
  _gpu_start_time "$$" || return 1
  cache="${TMPDIR:-/tmp}/gpu-facts.${EUID}/$$.${start}"
}

# Set the caller's `start` to a process's start time (field 22 of /proc/<pid>/stat).
# Arguments: pid
# Returns:   1 when there is no such process (or no /proc)
_gpu_start_time() {
  local stat fields=()
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  read -r -a fields <<<"${stat##*) }" # fields[0] is field 3 (the state)
  start="${fields[19]:-}"
  [[ -n "${start}" ]]
}

# Whether the cache directory is the user's own, private one.
# Arguments: directory
_gpu_cache_dir_ok() {
  [[ -d "$1" && ! -L "$1" && -O "$1" ]]
}

# Export the facts a subshell of this shell saved, if any. Reads with builtins only.
# Globals:   GPU_SM_ARCH, DETECTED_GPU_NAME, GPU_VRAM_GB, GPU_COUNT (exported),
#            _GPU_DETECTION_DONE (set to 1)
# Returns:   0 when the facts came from the cache, 1 when there is none
_gpu_cache_load() {
  local cache facts=()
  _gpu_cache_path && _gpu_cache_dir_ok "${cache%/*}" && [[ -f "${cache}" ]] || return 1
  mapfile -t -d '' facts 2>/dev/null <"${cache}" || return 1
  ((${#facts[@]} == 4)) || return 1
  export GPU_SM_ARCH="${facts[0]}" DETECTED_GPU_NAME="${facts[1]}" GPU_VRAM_GB="${facts[2]}" \
    GPU_COUNT="${facts[3]}"
  _GPU_DETECTION_DONE=1
  # the shell itself now holds the facts, and its later subshells inherit them
  ((BASH_SUBSHELL > 0)) || rm -f -- "${cache}"
}

# Save the exported facts for the other subshells of this shell, and remove the
# files of processes that have ended. Any failure only means no cache.
# Globals:   GPU_SM_ARCH, DETECTED_GPU_NAME, GPU_VRAM_GB, GPU_COUNT, TMPDIR (read)
_gpu_cache_save() {
  local cache dir entry name start stale=()
  _gpu_cache_path || return 0
  dir="${cache%/*}"
  [[ -d "${dir}" ]] || mkdir -m 700 -- "${dir}" 2>/dev/null || true # a sibling may have made it
  _gpu_cache_dir_ok "${dir}" || return 0
  for entry in "${dir}"/*; do
    [[ -f "${entry}" ]] || continue
    name="${entry##*/}"
    _gpu_start_time "${name%%.*}" || start=none
    [[ "${name}" == "${name%%.*}.${start}" ]] || stale+=("${entry}")
  done
  ((${#stale[@]} == 0)) || rm -f -- "${stale[@]}"
  # written aside, then renamed: a subshell running beside this one never reads half a file
  printf '%s\0' "${GPU_SM_ARCH}" "${DETECTED_GPU_NAME}" "${GPU_VRAM_GB}" "${GPU_COUNT}" \
    >"${cache}.${BASHPID}" 2>/dev/null && mv -f -- "${cache}.${BASHPID}" "${cache}" 2>/dev/null
  return 0
}
