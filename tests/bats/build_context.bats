#!/usr/bin/env bats
# docker/common/scripts/build/context.sh: the build context, and its removal
# after success, failure and interruption.
# shellcheck disable=SC2030,SC2031 # each test changes the environment in its own subshell

load 'helpers/common'
load 'fixtures/build/helpers'

setup() {
  common_setup
  build_setup
}

@test "tool stack: the context holds exactly what the Dockerfile copies, no caches or tests" {
  build_env_tool
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_equal "$(cat "${STUB_DIR}/docker.build.context")" "$(build_expected_context)"
  assert_equal "$(build_leftover_contexts)" ""
}

@test "host-only files stay out: the build libraries, validate.py and its value_rules.py, and only they (not every 'build')" {
  build_env_tool
  mkdir -p "${FIXTURE_REPO}/src/build" "${FIXTURE_REPO}/docker/common/scripts/extra/build"
  : >"${FIXTURE_REPO}/src/build/keep.py"
  : >"${FIXTURE_REPO}/docker/common/scripts/extra/build/keep.sh"
  : >"${FIXTURE_REPO}/docker/common/scripts/validate.py"
  DRY_RUN=1 run -0 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  # the fixture repository holds them: the context leaves them out
  [[ -f "${FIXTURE_REPO}/docker/common/scripts/build/stack.sh" && -f "${FIXTURE_REPO}/docker/common/download/validate.py" ]]
  [[ -f "${FIXTURE_REPO}/pyhelpers/value_rules.py" ]]
  refute_line --regexp '^common/scripts/build/'
  refute_line "common/download/validate.py"
  refute_line "pyhelpers/value_rules.py"
  assert_line "pyhelpers/model_ref.py"
  assert_line "src/build/keep.py"
  assert_line "common/scripts/extra/build/keep.sh"
  assert_line "common/scripts/validate.py"
}

@test "engine stacks add their download/ directory; PIP_WHEELHOUSE adds wheels/" {
  build_env_vllm
  mkdir -p "${BATS_TEST_TMPDIR}/wheel house/__pycache__"
  : >"${BATS_TEST_TMPDIR}/wheel house/torch-2.0-cp311-none-linux_x86_64.whl"
  PIP_WHEELHOUSE="${BATS_TEST_TMPDIR}/wheel house" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_equal "$(cat "${STUB_DIR}/docker.build.context")" \
    "$(build_expected_context download/fetch.py wheels/torch-2.0-cp311-none-linux_x86_64.whl)"
}

# A local model directory a user points CHAT_MODEL or TOOL_MODEL at.
make_local_model() {
  local dir="$1"
  mkdir -p "${dir}/sub"
  printf '{}' >"${dir}/config.json"
  printf 'w%.0s' {1..2048} >"${dir}/model.safetensors"
  printf 'v' >"${dir}/sub/vocab.txt"
  ln -s sub/vocab.txt "${dir}/vocab.txt" # a link inside the directory is followed
}

@test "a local model directory goes into the context as local/<kind>/; Docker sees local:<name>, never the host path" {
  build_env_vllm
  local host="${BATS_TEST_TMPDIR}/host models"
  make_local_model "${host}/my-chat"
  make_local_model "${host}/my-tool"
  export CHAT_MODEL="${host}/my-chat" TOOL_MODEL="${host}/my-tool"
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_equal "$(cat "${STUB_DIR}/docker.build.context")" "$(build_expected_context download/fetch.py \
    local/chat/config.json local/chat/model.safetensors local/chat/sub/vocab.txt local/chat/vocab.txt \
    local/tool/config.json local/tool/model.safetensors local/tool/sub/vocab.txt local/tool/vocab.txt)"
  [[ "${stderr}" == *"copying the local chat model 'my-chat' (2.1KiB) into the build context as local/chat/"* ]]
  run cat "${STUB_DIR}/docker.build.args"
  assert_line "CHAT_MODEL=local:my-chat"
  assert_line "TOOL_MODEL=local:my-tool"
  assert_line "text-inference.chat-model=local:my-chat"
  assert_line "text-inference.tool-model=local:my-tool"
  refute_output --partial "host models"
  assert_equal "$(build_leftover_contexts)" ""
  # DRY_RUN prints the command and the context: still no host path in either
  DRY_RUN=1 run -0 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  refute_output --partial "host models"
  assert_output --partial "--build-arg CHAT_MODEL=local:my-chat"
  assert_line "local/tool/model.safetensors"
}

@test "BAKE_MODELS=0 with a local model directory is refused before Docker: only the Hub can fill a volume" {
  build_env_tool
  make_local_model "${BATS_TEST_TMPDIR}/host models/my-tool"
  BAKE_MODELS=0 TOOL_MODEL="${BATS_TEST_TMPDIR}/host models/my-tool" run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_equal "${stderr##*$'\n'}" "[build] ✗ BAKE_MODELS=0 leaves the models to main.sh --download-models, which fetches them from the Hub, but '${BATS_TEST_TMPDIR}/host models/my-tool' is a local directory: bake it (BAKE_MODELS=1), or publish it to a Hub mirror"
  assert_equal "$(stub_call_count docker)" 0
  assert_equal "$(build_leftover_contexts)" ""
}

@test "a local model with a link leading outside it is refused: nothing built, no context left" {
  build_env_tool
  local host="${BATS_TEST_TMPDIR}/host models"
  make_local_model "${host}/my-tool"
  printf 'secret' >"${BATS_TEST_TMPDIR}/outside.txt"
  ln -s ../../outside.txt "${host}/my-tool/sub/escape.txt"
  TOOL_MODEL="${host}/my-tool" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"local tool model '${host}/my-tool': the link 'sub/escape.txt' points outside the directory"* ]]
  assert_equal "$(stub_call_count docker)" 0
  assert_equal "$(build_leftover_contexts)" ""
  rm "${host}/my-tool/sub/escape.txt"
  ln -s nowhere "${host}/my-tool/dangling"
  TOOL_MODEL="${host}/my-tool" run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"the link 'dangling' points outside the directory (or nowhere)"* ]]
}

@test "prepare_build_context_common called directly: prints the dir, sets BUILD_CONTEXT_DIR, under set -u" {
  set -u
  # shellcheck source=docker/common/scripts/build/context.sh
  source "${FIXTURE_REPO}/docker/common/scripts/build/context.sh"
  local printed
  printed="$(prepare_build_context_common "${FIXTURE_REPO}/docker/trt" "${FIXTURE_REPO}/docker/trt/requirements.txt" 1 my-prefix)"
  [[ "${printed}" == "${TMPDIR}/my-prefix."* ]]
  [[ -x "${printed}/scripts/main.sh" ]]
  assert_equal "$(build_context_list "${printed}")" "$(build_expected_context download/fetch.py)"
  rm -rf "${printed}"
  prepare_build_context_common "${FIXTURE_REPO}/docker/tool" "${FIXTURE_REPO}/docker/tool/requirements.txt" 0 >/dev/null
  [[ -d "${BUILD_CONTEXT_DIR}" ]]
  local dir="${BUILD_CONTEXT_DIR}"
  build_context_cleanup
  [[ ! -e "${dir}" && -z "${BUILD_CONTEXT_DIR}" ]]
}

@test "a missing stack file: error naming it, no directory left behind" {
  set -u
  # shellcheck source=docker/common/scripts/build/context.sh
  source "${FIXTURE_REPO}/docker/common/scripts/build/context.sh"
  rm "${FIXTURE_REPO}/docker/vllm/.dockerignore"
  run --separate-stderr prepare_build_context_common "${FIXTURE_REPO}/docker/vllm" "${FIXTURE_REPO}/docker/vllm/requirements.txt" 1
  assert_failure 1
  assert_output ""
  [[ "${stderr}" == *"missing '${FIXTURE_REPO}/docker/vllm/.dockerignore'"* ]]
  rm -r "${FIXTURE_REPO}/docker/trt/download"
  run --separate-stderr prepare_build_context_common "${FIXTURE_REPO}/docker/trt" "${FIXTURE_REPO}/docker/trt/requirements.txt" 1
  assert_failure 1
  [[ "${stderr}" == *"missing directory '${FIXTURE_REPO}/docker/trt/download'"* ]]
  assert_equal "$(build_leftover_contexts)" ""
}

@test "the context's Dockerfile is the stack's, then docker/common/Dockerfile.runtime; a missing final newline joins no lines" {
  set -u
  # shellcheck source=docker/common/scripts/build/context.sh
  source "${FIXTURE_REPO}/docker/common/scripts/build/context.sh"
  local stack="${FIXTURE_REPO}/docker/vllm" fragment="${FIXTURE_REPO}/docker/common/Dockerfile.runtime" dir
  dir="$(prepare_build_context_common "${stack}" "${stack}/requirements.txt" 1)"
  assert_equal "$(cat "${dir}/Dockerfile")" "$(cat "${stack}/Dockerfile" "${fragment}")"
  rm -rf "${dir}"
  # the stack's part comes first and ends before the fragment's first line starts
  printf 'FROM scratch AS stack' >"${stack}/Dockerfile"
  run -0 --separate-stderr build_dockerfile_assemble "${stack}"
  assert_equal "${stderr}" ""
  assert_equal "${output}" "$(printf 'FROM scratch AS stack\n' && cat "${fragment}")"
}

@test "a missing Dockerfile.runtime (or stack Dockerfile): one line naming it, status 1, no docker call, no context left" {
  build_env_tool
  local fragment="${FIXTURE_REPO}/docker/common/Dockerfile.runtime"
  local want="a stack's Dockerfile is docker/<stack>/Dockerfile followed by docker/common/Dockerfile.runtime, and both must exist"
  rm "${fragment}"
  run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_output ""
  assert_equal "${stderr##*$'\n'}" "[build] ✗ missing '${fragment}': ${want}"
  assert_equal "$(grep -c '✗' <<<"${stderr}")" 1
  assert_equal "$(stub_call_count docker)" 0
  assert_equal "$(build_leftover_contexts)" ""
  # the function on its own, under set -u: nothing on stdout, the same line on stderr
  set -u
  # shellcheck source=docker/common/scripts/build/context.sh
  source "${FIXTURE_REPO}/docker/common/scripts/build/context.sh"
  run -1 --separate-stderr build_dockerfile_assemble "${FIXTURE_REPO}/docker/trt"
  assert_output ""
  assert_equal "${stderr}" "[build] ✗ missing '${fragment}': ${want}"
  rm "${FIXTURE_REPO}/docker/trt/Dockerfile"
  run -1 --separate-stderr build_dockerfile_assemble "${FIXTURE_REPO}/docker/trt"
  assert_equal "${stderr}" "[build] ✗ missing '${FIXTURE_REPO}/docker/trt/Dockerfile': ${want}"
}

@test "the context is gone after a failed build" {
  build_env_tool
  DOCKER_STUB_BUILD_RC=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ -s "${STUB_DIR}/docker.build.started" ]] # the build did see a context
  assert_equal "$(build_leftover_contexts)" ""
}

@test "SIGINT during docker build: the build stops, the context is removed, status 130, nothing left running" {
  build_env_tool
  local pid status=0 deadline
  # a background job ignores SIGINT unless its signal disposition is reset
  DOCKER_STUB_BUILD_SLEEP=61.25 timeout 90 "${VENV_PYTHON}" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "${FIXTURE_REPO}/docker/build.sh" >"${BATS_TEST_TMPDIR}/out" 2>&1 3>&- &
  pid=$!
  deadline=$((SECONDS + 30))
  until [[ -s "${STUB_DIR}/docker.build.started" ]] || ((SECONDS > deadline)); do sleep 0.1; done
  [[ -s "${STUB_DIR}/docker.build.started" ]]
  local context
  context="$(cat "${STUB_DIR}/docker.build.started")"
  [[ -d "${context}" ]]
  # timeout(1) runs the script as its child: signal the script itself
  kill -INT "$(pgrep -P "${pid}")"
  wait "${pid}" || status=$?
  assert_equal "${status}" 130
  [[ ! -e "${context}" ]]
  assert_equal "$(build_leftover_contexts)" ""
  run cat "${BATS_TEST_TMPDIR}/out"
  assert_output --partial "interrupted (SIGINT); the build context was removed"
  run pgrep -f "sleep 61.25"
  assert_failure 1
}

@test "SIGTERM during docker build: context removed, status 143" {
  build_env_tool
  local pid status=0 deadline
  DOCKER_STUB_BUILD_SLEEP=62.25 "${FIXTURE_REPO}/docker/build.sh" >/dev/null 2>&1 3>&- &
  pid=$!
  deadline=$((SECONDS + 30))
  until [[ -s "${STUB_DIR}/docker.build.started" ]] || ((SECONDS > deadline)); do sleep 0.1; done
  [[ -s "${STUB_DIR}/docker.build.started" ]]
  kill -TERM "${pid}"
  wait "${pid}" || status=$?
  assert_equal "${status}" 143
  assert_equal "$(build_leftover_contexts)" ""
  run pgrep -f "sleep 62.25"
  assert_failure 1
}

@test "builds at once each get and remove their own context" {
  build_env_tool
  local pids=() i
  for i in 1 2 3; do
    TAG="tool-run${i}" "${FIXTURE_REPO}/docker/build.sh" >"${BATS_TEST_TMPDIR}/out${i}" 2>&1 3>&- &
    pids+=("$!")
  done
  for i in 0 1 2; do wait "${pids[i]}"; done
  assert_equal "$(grep -c '^build ' "${STUB_DIR}/docker.calls")" 3
  run sort -u "${STUB_DIR}/docker.build.args"
  assert_equal "$(grep -c '/build-context\.[^/]*/Dockerfile$' <<<"${output}")" 3
  assert_equal "$(build_leftover_contexts)" ""
}

@test "the build libraries set no shell options and survive set -u with nothing set" {
  # traps compared with those before, not with none: a signal ignored on entry (nohup) is listed
  run bash -c "set -u; before=\$(set +o); traps=\$(trap -p)
    for f in '${PROJECT_ROOT}'/docker/common/scripts/build/*.sh; do source \"\$f\"; source \"\$f\"; done
    [[ \"\$(set +o)\" == \"\${before}\" ]] && [[ \"\$(trap -p)\" == \"\${traps}\" ]] && echo same"
  assert_success
  assert_output same
}

@test "the real tree: each stack's context (skipped until the stack files exist)" {
  local stack missing=()
  for stack in vllm trt tool; do
    [[ -f "${PROJECT_ROOT}/docker/${stack}/Dockerfile" && -f "${PROJECT_ROOT}/docker/${stack}/requirements.txt" ]] ||
      missing+=("${stack}")
  done
  ((${#missing[@]} == 0)) || skip "docker/{${missing[*]}}/Dockerfile and requirements.txt do not exist yet (the stacks issue adds them)"
  for stack in vllm trt tool; do
    "build_env_${stack}"
    DRY_RUN=1 run --separate-stderr "${PROJECT_ROOT}/docker/${stack}/build.sh"
    assert_success
    assert_line "Dockerfile"
    assert_line "requirements.txt"
    assert_line "scripts/main.sh"
    assert_line "src/config/models.py"
    assert_line "common/scripts/logs.sh"
    assert_line "common/scripts/gpu.sh"
    assert_line "common/download/tool.py"
    assert_line "pyhelpers/build_log.py"
    # what only the build host runs stays out (so out of the image)
    refute_line --regexp '^common/scripts/build/'
    refute_line "common/download/validate.py"
    refute_line --regexp '(__pycache__|\.pyc$|^tests/)'
    if [[ "${stack}" == tool ]]; then refute_line --regexp '^download/'; else assert_line --regexp '^download/'; fi
  done
  assert_equal "$(stub_call_count docker)" 0
}
