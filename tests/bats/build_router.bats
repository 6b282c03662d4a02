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
  assert_equal "${stderr}" "[build] ✗ ENGINE 'tensorflow' is not valid; use one of: vllm, trt (or DEPLOY_MODE=tool for the tool stack)"
  assert_equal "$(stub_call_count docker)" 0
}

@test "the router checks the tag prefix before routing: the stack's message, no routing, no validation" {
  # a model no allowlist has: had the stack build run, its validation would speak first
  ENGINE=vllm DEPLOY_MODE=chat CHAT_MODEL=nobody/unlisted TAG=latest \
    run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_equal "${stderr}" "[build] ✗ TAG 'latest' must start with 'vllm-' for vLLM images (example: TAG=vllm-latest)"
  ENGINE=trt DEPLOY_MODE=both CHAT_MODEL=nobody/unlisted TAG=vllm-x \
    run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_equal "${stderr}" "[build] ✗ TAG 'vllm-x' must start with 'trt-' for TensorRT-LLM images (example: TAG=trt-vllm-x)"
  ENGINE=bogus DEPLOY_MODE=tool TOOL_MODEL=nobody/unlisted TAG=vllm-x \
    run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_equal "${stderr}" "[build] ✗ TAG 'vllm-x' must start with 'tool-' for tool-only images (example: TAG=tool-vllm-x)"
  DEPLOY_MODE=tool TOOL_MODEL=nobody/unlisted TAG='tool x' \
    run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  [[ "${stderr}" == "[build] ✗ TAG 'tool x' is not a valid Docker tag;"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "a DEPLOY_MODE that is no mode: the router leaves the tag alone, validation names the modes" {
  ENGINE=vllm DEPLOY_MODE=tools TOOL_MODEL=ProsusAI/finbert TAG=tool-x \
    run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  [[ "${stderr}" == *"[validate] ✗ DEPLOY_MODE 'tools' is not valid; use one of: chat, tool, both"* ]]
  [[ "${stderr}" != *"TAG"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "the valid engines are src/config/models.py's list, not a copy" {
  sed -i 's/^CHAT_ENGINES: tuple\[str, \.\.\.\] = ("vllm", "trt")$/CHAT_ENGINES: tuple[str, ...] = ("vllm",)/' \
    "${FIXTURE_REPO}/src/config/models.py"
  grep -qx 'CHAT_ENGINES: tuple\[str, ...\] = ("vllm",)' "${FIXTURE_REPO}/src/config/models.py"
  build_env_trt
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_equal "${stderr}" "[build] ✗ ENGINE 'trt' is not valid; use one of: vllm (or DEPLOY_MODE=tool for the tool stack)"
  assert_equal "$(stub_call_count docker)" 0
}

@test "DEPLOY_MODE=all: validation names the valid modes (from models.py), docker never called" {
  DEPLOY_MODE=all run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_output ""
  [[ "${stderr}" == *"[validate] ✗ DEPLOY_MODE 'all' is not valid; use one of: chat, tool, both"* ]]
  [[ "${stderr}" == *"[build] ✗ model validation failed; nothing was built"* ]]
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

# Print every docker/build.sh command of the READMEs' code blocks and of
# `docker/build.sh --help`, one a line (continuation lines joined, <placeholders>
# filled in).
readme_build_examples() {
  {
    awk '/^```/ { inside = !inside; next } inside { print }' "${PROJECT_ROOT}/README.md" "${PROJECT_ROOT}"/docker/*/README.md
    "${PROJECT_ROOT}/docker/build.sh" --help | sed -n '/^Examples:/,$p'
  } | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | sed -E 's/^ +//; s/ +/ /g; s/<[^>]*>/placeholder/g' |
    grep -E '^([A-Z_]+=[^ ]* )+docker/build\.sh( |$)'
}

@test "every README and --help example of docker/build.sh runs with DRY_RUN=1 (no Docker, no DOCKER_USERNAME needed)" {
  local examples example count=0
  examples="$(readme_build_examples)"
  [[ -n "${examples}" ]]
  while IFS= read -r example; do
    count=$((count + 1))
    run --separate-stderr env -i PATH="${PATH}" HOME="${HOME}" TMPDIR="${TMPDIR}" \
      bash -c "cd \"\${1}\" && DRY_RUN=1 ${example}" _ "${PROJECT_ROOT}"
    if ((status != 0)); then
      printf 'example failed: %s\n%s\n' "${example}" "${stderr}" >&2
      return 1
    fi
    assert_line --regexp '^docker build '
  done <<<"${examples}"
  ((count >= 10)) # the READMEs and --help hold at least this many
  assert_equal "$(stub_call_count docker)" 0
}

@test "DRY_RUN=1 with PUSH=1 needs no DOCKER_USERNAME and shows the push that would follow" {
  build_env_tool
  DRY_RUN=1 PUSH=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_line "docker push yap-text-api:tool-finbert"
  [[ "${stderr}" == *"a real push needs DOCKER_USERNAME (or IMAGE_REPO)"* ]]
  DRY_RUN=1 PUSH=1 DOCKER_USERNAME=myuser run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_line "docker push myuser/yap-text-api:tool-finbert"
  [[ "${stderr}" != *"a real push needs"* ]]
  DRY_RUN=1 PUSH=0 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  refute_line --partial "docker push"
  # a real build still requires it
  PUSH=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"DOCKER_USERNAME is required when pushing (PUSH=1)"* ]]
  assert_equal "$(stub_call_count docker)" 0
}
