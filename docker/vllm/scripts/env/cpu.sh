# shellcheck shell=bash
# vllm stack, CPU flavor (an image built with VLLM_DEVICE=cpu): the second env file, in
# place of env/gpu.sh. Nothing probes a GPU; vLLM's CPU build gets these presets through
# settings_default with source "cpu preset", so a user value always wins:
#   CHAT_KV_CACHE_BYTES  2G  the KV cache (vLLM --kv-cache-memory-bytes): there is no GPU
#                            memory share to size it from; 2 GiB holds ~30k tokens of an
#                            0.5B model and fits a small host beside the tool model
#   CHAT_ENFORCE_EAGER   1   no torch.compile (vLLM --enforce-eager): on the CPU it needs a
#                            C++ compiler the image does not ship, and it adds tens of
#                            seconds to every start
# CPU threads are vLLM's own VLLM_CPU_OMP_THREADS_BIND (default auto: one core is kept for
# the serving processes, the rest run the model) and VLLM_CPU_NUM_OF_RESERVED_CPU; the
# engine inherits them. When a GPU is visible all the same, one warning says it is unused.
# vLLM's CPU build always runs its model in a worker process and talks to it through a
# message queue in /dev/shm (10 chunks of VLLM_MQ_MAX_CHUNK_BYTES_MB, 16 MiB: 160 MiB), which
# Docker's default 64 MiB cannot hold: with the engine deployed, too little free space there
# is an error naming --shm-size, not a traceback from the engine a minute later.
VLLM_CPU_SHM_MIB=192

# Apply the CPU presets; check /dev/shm; warn when nvidia-smi lists a GPU.
# Globals:   CHAT_KV_CACHE_BYTES, CHAT_ENFORCE_EAGER (set unless the user set them),
#            GPU_QUERY_TIMEOUT, DEPLOY_CHAT, CHAT_ENGINE_CMD, VLLM_CPU_SHM_MIB (read)
# Outputs:   the error or the warning on stderr
# Returns:   1 when /dev/shm is too small for vLLM's CPU engine
vllm_cpu_presets() {
  settings_default CHAT_KV_CACHE_BYTES 2G "cpu preset"
  settings_default CHAT_ENFORCE_EAGER 1 "cpu preset"
  local size free
  read -r size free < <(startup_shm_mib)
  if [[ "${DEPLOY_CHAT:-0}" == 1 && -z "${CHAT_ENGINE_CMD:-}" && -n "${free}" ]] && ((free < VLLM_CPU_SHM_MIB)); then
    log_err "[vllm]" "/dev/shm has ${free} MiB free (of ${size}); vLLM's CPU engine needs ${VLLM_CPU_SHM_MIB} MiB there for its worker's message queue: run the container with --shm-size=1g (or --ipc=host)"
    return 1
  fi
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  local gpu
  gpu="$(timeout -k 2 "${GPU_QUERY_TIMEOUT:-10}" nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)" ||
    return 0 # no answer: no GPU to warn about
  gpu="${gpu%%$'\n'*}"
  [[ -n "${gpu}" ]] || return 0
  log_warn "[vllm]" "a GPU is visible (${gpu%%,*}), but this image runs vLLM on the CPU (VLLM_DEVICE=cpu) and leaves it unused; for the GPU, run an image built with VLLM_DEVICE=cuda"
}

vllm_cpu_presets
