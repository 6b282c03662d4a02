# shellcheck shell=bash
# Bootstrap of the trt stack: run_docker_main (lifecycle.sh) sources this file and calls
# stack_bootstrap before start_server.sh is exec'd: deploy mode, one GPU detection,
# env/gpu.sh's presets (GPU_SM, allocator settings), then src/config (defaults; the engine's
# limits, quantization, architecture and rank count, read once from its config.json and
# build_metadata.json; every check). Only exported variables reach start_server.sh.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT}/common/scripts/startup.sh"

# The trt stack's bootstrap.
# Returns:   the status of startup_bootstrap
stack_bootstrap() {
  startup_bootstrap trt trt "${APP_ROOT}/scripts/env/gpu.sh" trt_gpu_settings
}
