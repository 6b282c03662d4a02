#!/usr/bin/env bats
# docker/common/scripts/deploy_mode.sh
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load 'helpers/common'

setup() {
  common_setup
  unset DEPLOY_MODE DEPLOY_CHAT DEPLOY_TOOL CHAT_MODEL TOOL_MODEL ENGINE TRT_ENGINE_REPO TRT_ENGINE_DIR
  set -u
  # shellcheck source=docker/common/scripts/deploy_mode.sh
  source "${COMMON_SCRIPTS}/deploy_mode.sh"
}

@test "normalize: unset or empty DEPLOY_MODE means both, exported" {
  normalize_deploy_mode
  assert_equal "${DEPLOY_MODE}" both
  run bash -c 'printf %s "${DEPLOY_MODE}"'
  assert_output both
  DEPLOY_MODE=""
  normalize_deploy_mode
  assert_equal "${DEPLOY_MODE}" both
}

@test "normalize: chat, tool and both exactly; case, blanks and look-alikes are errors" {
  local raw
  for raw in chat tool both; do
    DEPLOY_MODE="${raw}"
    run --separate-stderr normalize_deploy_mode
    assert_success
    assert_equal "${stderr}" ""
  done
  for raw in " Chat " "TOOL" $'\tboth\n' "cHaT" "x:both" "both:x" ":both" "chat:"; do
    DEPLOY_MODE="${raw}"
    run --separate-stderr normalize_deploy_mode
    assert_failure 1
    assert_equal "${stderr}" "[deploy] ✗ DEPLOY_MODE '$(util_printable "${raw}")' is not valid; use one of: chat, tool, both (default both)"
  done
}

@test "normalize: the build's rule (validate.py): every value one accepts the other accepts" {
  local raw build runtime
  # shellcheck disable=SC2016 # a literal $(id): never expanded
  for raw in chat tool both Chat " both " TOOL "x:both" "both:x" tools "chat,tool" '$(id)' $'chat\n' "   "; do
    build=ok runtime=ok
    python3 "${PROJECT_ROOT}/docker/common/download/validate.py" --deploy-mode "${raw}" \
      --engine vllm --chat-model Qwen/Qwen3-8B-AWQ --tool-model ProsusAI/finbert 2>/dev/null || build=refused
    DEPLOY_MODE="${raw}" normalize_deploy_mode 2>/dev/null || runtime=refused
    assert_equal "${raw}: runtime ${runtime}" "${raw}: runtime ${build}"
  done
}

@test "normalize: invalid values name the value and the valid ones, status 1, value unchanged" {
  local raw
  for raw in tools "both,chat" 'chat tool'; do
    DEPLOY_MODE="${raw}"
    run --separate-stderr normalize_deploy_mode "[vllm]"
    assert_failure 1
    assert_equal "${output}" ""
    assert_equal "${stderr}" "[vllm] ✗ DEPLOY_MODE '${raw}' is not valid; use one of: chat, tool, both (default both)"
  done
  DEPLOY_MODE=tools
  normalize_deploy_mode 2>/dev/null || true # the failure is asserted above; here: the value is kept
  assert_equal "${DEPLOY_MODE}" tools
}

@test "normalize: \$(id) is shown literally and never run" {
  make_stub id 'echo "uid=0(root)"'
  # shellcheck disable=SC2016 # the literal text is the point
  DEPLOY_MODE='$(id)'
  run --separate-stderr normalize_deploy_mode
  assert_failure 1
  # shellcheck disable=SC2016
  assert_equal "${stderr}" '[deploy] ✗ DEPLOY_MODE '\''$(id)'\'' is not valid; use one of: chat, tool, both (default both)'
  assert_equal "$(stub_call_count id)" 0
}

@test "normalize: blanks only is an error, not the default" {
  DEPLOY_MODE="   "
  run --separate-stderr normalize_deploy_mode
  assert_failure 1
  assert_equal "${stderr}" "[deploy] ✗ DEPLOY_MODE '   ' is blank; use chat, tool or both (or leave it unset for both)"
}

@test "normalize: control characters stay on one line" {
  DEPLOY_MODE=$'chat\nrm -rf'
  run --separate-stderr normalize_deploy_mode
  assert_failure 1
  [[ "${stderr}" != *$'\n'* ]]
  [[ "${stderr}" == *"'chat?rm -rf'"* ]]
}

@test "set_deploy_flags exports 0/1 for each mode" {
  local mode want
  for mode in chat:10 tool:01 both:11; do
    DEPLOY_MODE="${mode%%:*}"
    want="${mode#*:}"
    set_deploy_flags
    assert_equal "${DEPLOY_CHAT}${DEPLOY_TOOL}" "${want}"
    run bash -c 'printf %s "${DEPLOY_CHAT}${DEPLOY_TOOL}"'
    assert_output "${want}"
  done
}

@test "set_deploy_flags refuses an unnormalized value" {
  DEPLOY_MODE=" Chat "
  run --separate-stderr set_deploy_flags
  assert_failure 1
  [[ "${stderr}" == *"call normalize_deploy_mode first"* ]]
}

@test "validate: each mode needs its models; errors name the variable and the build" {
  DEPLOY_MODE=chat DEPLOY_CHAT=1 DEPLOY_TOOL=0
  run --separate-stderr validate_deploy_models "[vllm]" vllm
  assert_failure 1
  assert_equal "${stderr}" "[vllm] ✗ CHAT_MODEL is not set but DEPLOY_MODE=chat serves a chat model: the image was built without it; rebuild with CHAT_MODEL=<repo id> or run with DEPLOY_MODE=tool"
  CHAT_MODEL=org/chat run --separate-stderr validate_deploy_models "[vllm]" vllm
  assert_success
  assert_equal "${stderr}" ""

  DEPLOY_MODE=tool DEPLOY_CHAT=0 DEPLOY_TOOL=1
  CHAT_MODEL=org/chat run --separate-stderr validate_deploy_models
  assert_failure 1
  assert_equal "${stderr}" "[deploy] ✗ TOOL_MODEL is not set but DEPLOY_MODE=tool serves a tool model: the image was built without it; rebuild with TOOL_MODEL=<repo id> or run with DEPLOY_MODE=chat"
}

@test "validate: both reports every missing model" {
  DEPLOY_MODE=both DEPLOY_CHAT=1 DEPLOY_TOOL=1
  run --separate-stderr validate_deploy_models
  assert_failure 1
  assert_equal "$(printf '%s\n' "${stderr}" | wc -l)" 2
  [[ "${stderr}" == *"CHAT_MODEL is not set"*"TOOL_MODEL is not set"* ]]
  CHAT_MODEL=a TOOL_MODEL=b run validate_deploy_models
  assert_success
}

@test "validate on its own (no flags): DEPLOY_MODE decides what is checked, nothing is exported" {
  DEPLOY_MODE=both run --separate-stderr validate_deploy_models "[x]" ""
  assert_failure 1
  assert_equal "${stderr}" "[x] ✗ CHAT_MODEL is not set but DEPLOY_MODE=both serves a chat model: the image was built without it; rebuild with CHAT_MODEL=<repo id> or run with DEPLOY_MODE=tool
[x] ✗ TOOL_MODEL is not set but DEPLOY_MODE=both serves a tool model: the image was built without it; rebuild with TOOL_MODEL=<repo id> or run with DEPLOY_MODE=chat"
  run --separate-stderr validate_deploy_models # unset DEPLOY_MODE means both
  assert_failure 1
  [[ "${stderr}" == *"CHAT_MODEL is not set"*"TOOL_MODEL is not set"* ]]
  DEPLOY_MODE=tool TOOL_MODEL=org/tool run --separate-stderr validate_deploy_models
  assert_success
  assert_equal "${stderr}" ""
  DEPLOY_MODE=tool run --separate-stderr validate_deploy_models
  assert_failure 1
  assert_equal "${stderr}" "[deploy] ✗ TOOL_MODEL is not set but DEPLOY_MODE=tool serves a tool model: the image was built without it; rebuild with TOOL_MODEL=<repo id> or run with DEPLOY_MODE=chat"
  DEPLOY_MODE=chat CHAT_MODEL=org/chat run --separate-stderr validate_deploy_models "[trt]" trt
  assert_success
  [[ "${stderr}" == "[trt] ⚠ TRT_ENGINE_REPO is not set"* ]]
  DEPLOY_MODE=tools run --separate-stderr validate_deploy_models "[x]"
  assert_failure 1
  assert_equal "${stderr}" "[x] ✗ DEPLOY_MODE 'tools' is not valid; use one of: chat, tool, both (default both)"
  DEPLOY_MODE=chat CHAT_MODEL=c
  validate_deploy_models
  assert_equal "${DEPLOY_MODE}|${DEPLOY_CHAT-unset}|${DEPLOY_TOOL-unset}" "chat|unset|unset"
}

@test "validate: trt with chat and no TRT_ENGINE_REPO warns about TRT_ENGINE_DIR, still succeeds" {
  DEPLOY_MODE=chat DEPLOY_CHAT=1 DEPLOY_TOOL=0 CHAT_MODEL=org/chat
  run --separate-stderr validate_deploy_models "[trt]" trt
  assert_success
  assert_equal "${stderr}" "[trt] ⚠ TRT_ENGINE_REPO is not set: the TensorRT-LLM engine must already be present at TRT_ENGINE_DIR"
  TRT_ENGINE_DIR=/e run --separate-stderr validate_deploy_models "[trt]" trt
  [[ "${stderr}" == *"TRT_ENGINE_DIR (/e)"* ]]
  TRT_ENGINE_REPO=org/engine run --separate-stderr validate_deploy_models "[trt]" trt
  assert_equal "${stderr}" ""
  # vllm never needs an engine repo; trt in tool mode neither
  run --separate-stderr validate_deploy_models "[vllm]" vllm
  assert_equal "${stderr}" ""
  DEPLOY_MODE=tool DEPLOY_CHAT=0 DEPLOY_TOOL=1 TOOL_MODEL=t run --separate-stderr validate_deploy_models "[trt]" trt
  assert_success
  assert_equal "${stderr}" ""
}

@test "validate: the engine defaults to ENGINE; an unknown engine is an error" {
  DEPLOY_MODE=chat DEPLOY_CHAT=1 DEPLOY_TOOL=0 CHAT_MODEL=org/chat
  ENGINE=trt run --separate-stderr validate_deploy_models
  [[ "${stderr}" == *"TRT_ENGINE_REPO is not set"* ]]
  run --separate-stderr validate_deploy_models "[x]" tensorrt
  assert_failure 1
  assert_equal "${stderr}" "[x] ✗ ENGINE 'tensorrt' is not valid; use vllm or trt"
}

@test "init_deploy_mode: runs the steps in order and stops at the first failure" {
  DEPLOY_MODE=tool TOOL_MODEL=org/tool
  init_deploy_mode "[tool]" ""
  assert_equal "${DEPLOY_MODE}:${DEPLOY_CHAT}:${DEPLOY_TOOL}" tool:0:1

  DEPLOY_MODE=tools
  run --separate-stderr init_deploy_mode "[tool]" ""
  assert_failure 1
  assert_equal "$(printf '%s\n' "${stderr}" | wc -l)" 1
  [[ "${stderr}" == "[tool] ✗ DEPLOY_MODE 'tools'"* ]]

  unset DEPLOY_MODE DEPLOY_CHAT DEPLOY_TOOL
  run --separate-stderr init_deploy_mode "[vllm]" vllm
  assert_failure 1
  [[ "${stderr}" == *"CHAT_MODEL is not set but DEPLOY_MODE=both"* ]]
}

@test "init_deploy_mode does not exit the caller's shell, even under set -e" {
  run bash -c "set -euo pipefail; source '${COMMON_SCRIPTS}/deploy_mode.sh'
    DEPLOY_MODE=tools
    if init_deploy_mode 2>/dev/null; then echo passed; else echo 'caller decides'; fi"
  assert_success
  assert_output "caller decides"
}

@test "library sets no shell options, survives set -u, sources twice" {
  run bash -c "set -u; before=\$(set +o); source '${COMMON_SCRIPTS}/deploy_mode.sh'; source '${COMMON_SCRIPTS}/deploy_mode.sh'
    CHAT_MODEL=c TOOL_MODEL=t init_deploy_mode; [[ \"\$(set +o)\" == \"\${before}\" ]] && echo \"same \${DEPLOY_MODE}\""
  assert_success
  assert_output "same both"
}
