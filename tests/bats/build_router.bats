#!/usr/bin/env bats
# docker/build.sh: routing by ENGINE and DEPLOY_MODE, and its help.
# shellcheck disable=SC2030,SC2031 # each test changes the environment in its own subshell

load 'helpers/common'
load 'fixtures/build/helpers'

setup() {
  common_setup
  build_setup
}

@test "--help prints usage with examples for all three stacks, exits 0, calls no docker" {
  run --separate-stderr "${PROJECT_ROOT}/docker/build.sh" --help
  assert_success
  [[ "${output}" == "Usage:   docker/build.sh"* ]]
  assert_output --partial "ENGINE=vllm DEPLOY_MODE=both"
  assert_output --partial "ENGINE=trt DEPLOY_MODE=chat"
  assert_output --partial "DEPLOY_MODE=tool TOOL_MODEL="
  refute_output --partial "set -Eeuo"
  assert_equal "$(stub_call_count docker)" 0
}

@test "every stack script answers --help with its own usage" {
  local stack
  for stack in vllm trt tool; do
    run --separate-stderr "${PROJECT_ROOT}/docker/${stack}/build.sh" --help
    assert_success
    [[ "${output}" == "Usage:   docker/${stack}/build.sh"* ]]
  done
}

@test "routing: every ENGINE x DEPLOY_MODE builds the right stack's Dockerfile" {
  local engine mode want
  for engine in vllm trt; do
    for mode in chat tool both; do
      rm -f "${STUB_DIR}/docker.build.dockerfile"
      want="${engine}"
      [[ "${mode}" == tool ]] && want=tool
      ENGINE="${engine}" DEPLOY_MODE="${mode}" CHAT_MODEL=Qwen/Qwen3-8B-AWQ TOOL_MODEL=ProsusAI/finbert \
        TRT_ENGINE_LABEL=sm90_trt-llm-0.17.0_cuda12.8 ALLOW_UNLISTED_MODELS=1 PUSH=0 \
        TAG="$([[ "${mode}" == tool ]] && echo tool || echo "${engine}")-x" \
        run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
      assert_success
      assert_equal "$(cat "${STUB_DIR}/docker.build.dockerfile")" \
        "# fixture stack: ${want} (the build tests never run this Dockerfile; the docker stub records it)"
      [[ "${stderr}" == *"→ docker/${want}/build.sh"* ]]
    done
  done
}

@test "DEPLOY_MODE=tool goes to the tool stack even with an unknown ENGINE" {
  build_env_tool
  ENGINE=bogus run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_equal "$(cat "${STUB_DIR}/docker.build.dockerfile")" \
    "# fixture stack: tool (the build tests never run this Dockerfile; the docker stub records it)"
  # the tool stack passes no ENGINE build argument and no engine label
  run ! grep -q 'ENGINE' "${STUB_DIR}/docker.build.args"
}

@test "defaults: ENGINE=vllm and DEPLOY_MODE=both" {
  export CHAT_MODEL=Qwen/Qwen3-8B-AWQ TOOL_MODEL=ProsusAI/finbert PUSH=0
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_output "yap-text-api:vllm-both"
  run grep -Fx -e "ENGINE=vllm" -e "DEPLOY_MODE=both" "${STUB_DIR}/docker.build.args"
  assert_equal "${#lines[@]}" 2
}

@test "ENGINE=tensorflow: error lists vllm and trt, status 1, docker never called" {
  ENGINE=tensorflow DEPLOY_MODE=chat run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_equal "${stderr}" "[build] ✗ ENGINE 'tensorflow' is not valid; use one of: vllm trt (or DEPLOY_MODE=tool for the tool stack)"
  assert_equal "$(stub_call_count docker)" 0
}

@test "DEPLOY_MODE=all: error names the valid modes, docker never called" {
  DEPLOY_MODE=all run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_equal "${stderr}" "[build] ✗ DEPLOY_MODE 'all' is not valid; use one of: chat tool both"
  assert_equal "$(stub_call_count docker)" 0
}

@test "a stack script refuses an ENGINE or DEPLOY_MODE that is not its own" {
  build_env_vllm
  ENGINE=trt run --separate-stderr "${FIXTURE_REPO}/docker/vllm/build.sh"
  assert_failure 1
  assert_output ""
  [[ "${stderr}" == *"ENGINE 'trt' does not match the vllm stack"* ]]
  DEPLOY_MODE=both run --separate-stderr "${FIXTURE_REPO}/docker/tool/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"DEPLOY_MODE 'both' cannot be built by the tool stack"* ]]
  run --separate-stderr "${FIXTURE_REPO}/docker/vllm/build.sh" --bogus
  assert_failure 1
  [[ "${stderr}" == *"unknown argument '--bogus'"* ]]
  assert_equal "$(stub_call_count docker)" 0
}
