#!/usr/bin/env bats
# Tag policy, image names and validation before Docker (build/args.sh, build/validate.sh).
# shellcheck disable=SC2030,SC2031 # each test changes the environment in its own subshell

load 'helpers/common'
load 'fixtures/build/helpers'

setup() {
  common_setup
  build_setup
}

@test "good tags build: each stack's prefix, tool- for DEPLOY_MODE=tool on an engine stack" {
  build_env_vllm
  TAG=vllm-qwen3-8b_awq.v1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_output "yap-text-api:vllm-qwen3-8b_awq.v1"
  build_env_trt
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_output "yap-text-api:trt-qwen30b-sm90"
  DEPLOY_MODE=tool TOOL_MODEL=ProsusAI/finbert TAG=tool-on-trt run --separate-stderr "${FIXTURE_REPO}/docker/trt/build.sh"
  assert_success
  assert_output "yap-text-api:tool-on-trt"
  # four calls per build: engine version, buildx version, client version, build
  assert_equal "$(stub_call_count docker)" 12
  assert_equal "$(grep -c '^build ' "${STUB_DIR}/docker.calls")" 3
}

@test "TAG=latest for vLLM: the prefix message with an example, docker never called" {
  build_env_vllm
  TAG=latest run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"[build] ✗ TAG 'latest' must start with 'vllm-' for vLLM images (example: TAG=vllm-latest)"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "wrong prefixes: vllm- on trt, trt- on tool, vllm- for DEPLOY_MODE=tool" {
  build_env_trt
  TAG=vllm-x run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"TAG 'vllm-x' must start with 'trt-' for TensorRT-LLM images"* ]]
  build_env_tool
  TAG=trt-x run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"TAG 'trt-x' must start with 'tool-' for tool-only images"* ]]
  build_env_vllm
  DEPLOY_MODE=tool TAG=vllm-tool run --separate-stderr "${FIXTURE_REPO}/docker/vllm/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"must start with 'tool-'"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "tags that are not Docker tags are refused before Docker" {
  build_env_vllm
  local tag
  # shellcheck disable=SC2016 # a literal $(id): it must never be expanded by anyone
  for tag in "vllm-a b" "vllm-x;rm" "-vllm" ".vllm" "vllm-$(printf 'x%.0s' {1..130})" "vllm-ü" 'vllm-$(id)' "vllm:x"; do
    TAG="${tag}" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
    assert_failure 1
    [[ "${stderr}" == *"is not a valid Docker tag; use letters, digits"* ]]
  done
  assert_equal "$(stub_call_count docker)" 0
}

@test "image name: DOCKER_USERNAME/IMAGE_NAME, or IMAGE_REPO for a private registry" {
  build_env_tool
  DOCKER_USERNAME=myuser IMAGE_NAME=text run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_output "myuser/text:tool-finbert"
  IMAGE_REPO=registry.internal:5000/team/text-api DOCKER_USERNAME=myuser run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_output "registry.internal:5000/team/text-api:tool-finbert"
  IMAGE_REPO="Team/Bad Name" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"image repository 'Team/Bad Name' (from IMAGE_REPO, or DOCKER_USERNAME/IMAGE_NAME) is not valid"* ]]
}

@test "PUSH=1 without DOCKER_USERNAME or IMAGE_REPO: clear error, docker never called" {
  build_env_tool
  PUSH=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"DOCKER_USERNAME is required when pushing (PUSH=1)"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "a model outside the allowlist stops the build before Docker, with suggestions" {
  build_env_vllm
  CHAT_MODEL=Qwen/Qwen3-8B-AWK run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_output ""
  [[ "${stderr}" == *"[validate] ✗ CHAT_MODEL 'Qwen/Qwen3-8B-AWK' is not in the vllm chat allowlist; did you mean: Qwen/Qwen3-8B-AWQ"* ]]
  [[ "${stderr}" == *"[build] ✗ model validation failed; nothing was built"* ]]
  assert_equal "$(stub_call_count docker)" 0
  assert_equal "$(build_leftover_contexts)" ""
}

@test "hostile model values never reach Docker" {
  build_env_vllm
  local bad
  # shellcheck disable=SC2016 # a literal $(touch pwned): it must never be expanded by anyone
  for bad in 'a/b;touch pwned' '$(touch pwned)/x' '../../etc/passwd' 'a/b/c' 'a b/c' $'a/b\nc'; do
    CHAT_MODEL="${bad}" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
    assert_failure 1
    [[ "${stderr}" == *"is not a valid Hugging Face repo id"* ]]
  done
  assert_equal "$(stub_call_count docker)" 0
  [[ ! -e pwned && ! -e "${FIXTURE_REPO}/pwned" ]]
}

@test "TRT: a missing or malformed TRT_ENGINE_LABEL stops the build before Docker" {
  build_env_trt
  TRT_ENGINE_LABEL="" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"TRT_ENGINE_LABEL is required with ENGINE=trt"* ]]
  TRT_ENGINE_LABEL=sm90-latest run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"TRT_ENGINE_LABEL 'sm90-latest' is not valid"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "TRT: an engine repo outside the allowlist stops the build before Docker" {
  build_env_trt
  TRT_ENGINE_REPO=anyone/anything run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"✗ TRT_ENGINE_REPO 'anyone/anything' is not in the trt chat allowlist"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "revisions, HF_ENDPOINT and BASE_IMAGE of the wrong shape stop the build before Docker" {
  build_env_vllm
  local var bad
  # shellcheck disable=SC2016 # literal $(touch pwned): never expanded by anyone
  for var in CHAT_MODEL_REVISION TOOL_MODEL_REVISION HF_ENDPOINT BASE_IMAGE; do
    for bad in '$(touch pwned)' $'main\nTAG=x' 'not a url'; do
      env "${var}=${bad}" DRY_RUN=1 "${FIXTURE_REPO}/docker/build.sh" >"${BATS_TEST_TMPDIR}/out" \
        2>"${BATS_TEST_TMPDIR}/err" && false
      grep -qF "[validate] ✗ ${var} '" "${BATS_TEST_TMPDIR}/err"
      [[ ! -s "${BATS_TEST_TMPDIR}/out" ]]
    done
  done
  assert_equal "$(stub_call_count docker)" 0
  [[ ! -e pwned && ! -e "${FIXTURE_REPO}/pwned" ]]
  assert_equal "$(build_leftover_contexts)" ""
}

@test "python3 missing: validation says so, status 1, docker never called" {
  build_env_tool
  mkdir -p "${BATS_TEST_TMPDIR}/nopy"
  local tool
  for tool in bash dirname cat mktemp sed grep date tar find sort rm mkdir cp; do
    ln -s "$(command -v "${tool}")" "${BATS_TEST_TMPDIR}/nopy/${tool}"
  done
  PATH="${STUB_DIR}:${BATS_TEST_TMPDIR}/nopy" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"python3 not found on PATH; model validation needs Python 3"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "validate.py missing: a clear message, status 1" {
  build_env_tool
  rm "${FIXTURE_REPO}/docker/common/download/validate.py"
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"validator '${FIXTURE_REPO}/docker/common/download/validate.py' is missing"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "bad option values: one line each naming the variable, docker never called" {
  build_env_tool
  PUSH=yes NO_CACHE=2 DOCKER_TIMEOUT=0 PLATFORM=amd64 BUILD_NETWORK='host;x' \
    BUILD_CA_BUNDLE=/nonexistent.pem PIP_WHEELHOUSE=/nonexistent \
    run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"PUSH 'yes' is not valid; use 0 or 1"* ]]
  [[ "${stderr}" == *"NO_CACHE '2' is not valid"* ]]
  [[ "${stderr}" == *"DOCKER_TIMEOUT '0' is not valid"* ]]
  [[ "${stderr}" == *"PLATFORM 'amd64' is not valid; use os/arch"* ]]
  [[ "${stderr}" == *"BUILD_NETWORK 'host;x' is not valid"* ]]
  [[ "${stderr}" == *"BUILD_CA_BUNDLE '/nonexistent.pem' is not a readable file"* ]]
  [[ "${stderr}" == *"PIP_WHEELHOUSE '/nonexistent' is not a directory"* ]]
  : >"${BATS_TEST_TMPDIR}/a,b.pem"
  BUILD_CA_BUNDLE="${BATS_TEST_TMPDIR}/a,b.pem" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"a,b.pem' holds a comma, which --secret cannot take"* ]]
  assert_equal "$(stub_call_count docker)" 0
}
