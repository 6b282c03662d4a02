# shellcheck shell=bash
# Bootstrap of the trt stack, sourced by run_docker_main (lifecycle.sh) before
# start_server.sh is exec'd: deploy mode, one GPU detection, env/gpu.sh (GPU_SM,
# allocator settings), then src/config (defaults; the engine's limits, quantization,
# architecture and rank count, read once from its config.json and build_metadata.json;
# every check) and the shared start-up checks. Only exported variables reach
# start_server.sh. Its status is the bootstrap's status.

# shellcheck source=docker/common/scripts/startup.sh
source "${APP_ROOT}/common/scripts/startup.sh"

startup_bootstrap trt trt "${APP_ROOT}/scripts/env/gpu.sh"
