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

# Apply the CPU presets; warn when nvidia-smi lists a GPU.
# Globals:   CHAT_KV_CACHE_BYTES, CHAT_ENFORCE_EAGER (set unless the user set them),
#            GPU_QUERY_TIMEOUT (read)
# Outputs:   the warning on stderr
vllm_cpu_presets() {
  settings_default CHAT_KV_CACHE_BYTES 2G "cpu preset"
  settings_default CHAT_ENFORCE_EAGER 1 "cpu preset"
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  local gpu
  gpu="$(timeout -k 2 "${GPU_QUERY_TIMEOUT:-10}" nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)" ||
    return 0 # no answer: no GPU to warn about
  gpu="${gpu%%$'\n'*}"
  [[ -n "${gpu}" ]] || return 0
  log_warn "[vllm]" "a GPU is visible (${gpu%%,*}), but this image runs vLLM on the CPU (VLLM_DEVICE=cpu) and leaves it unused; for the GPU, run an image built with VLLM_DEVICE=cuda"
}

vllm_cpu_presets
