# shellcheck shell=bash
# Bootstrap of the vllm stack: run_docker_main (lifecycle.sh) sources this file and calls
# stack_bootstrap before the server starts: deploy mode, one GPU detection, env/gpu.sh's
# presets for the detected GPU, then src/config (defaults, FlashInfer, the model's
# quantization, every check). An image built with VLLM_DEVICE=cpu (vLLM's CPU build,
# recorded in image.env) detects no GPU and takes env/cpu.sh's presets instead.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT}/common/scripts/startup.sh"

# Bootstrap for the device the image was built for. VLLM_DEVICE is the image's (image.env);
# a different value from the user is an error, since the engine's build cannot change at run
# time. A layout without image.env (the tests) takes VLLM_DEVICE as given.
# Globals:   VLLM_DEVICE, APP_ROOT (read)
# Returns:   the status of startup_bootstrap; 1 when VLLM_DEVICE differs from the image's
stack_bootstrap() {
  local env_dir="${APP_ROOT}/scripts/env" baked
  baked="$(settings_image_value VLLM_DEVICE)"
  if [[ -n "${baked}" && "${VLLM_DEVICE:-${baked}}" != "${baked}" ]]; then
    log_err "[vllm]" "VLLM_DEVICE '$(util_printable "${VLLM_DEVICE}")' is not this image's device (${baked}): it is chosen when the image is built (docker/build.sh VLLM_DEVICE=cuda|cpu); unset it"
    return 1
  fi
  if [[ "${VLLM_DEVICE:-}" == cpu ]]; then
    startup_bootstrap --cpu vllm vllm "${env_dir}/cpu.sh" vllm_cpu_presets
  else
    startup_bootstrap vllm vllm "${env_dir}/gpu.sh" vllm_gpu_presets
  fi
}
