#!/usr/bin/env bats
# The build flow of docker/<stack>/build.sh (build/stack.sh, args.sh, docker.sh):
# build arguments, secrets, labels, DRY_RUN, PUSH, login and push retry.
# shellcheck disable=SC2030,SC2031 # each test changes the environment in its own subshell

load 'helpers/common'
load 'fixtures/build/helpers'

setup() {
  common_setup
  build_setup
}

# The recorded `docker build` arguments of the first build, one a line
# (without the subcommand itself).
first_build_args() {
  sed '/^--$/q' "${STUB_DIR}/docker.build.args" | sed '1d; $d'
}

@test "build arguments: the deploy mode's models, revisions, mirror and base image; BuildKit on" {
  build_env_trt
  export DEPLOY_MODE=both TOOL_MODEL=ProsusAI/finbert CHAT_MODEL_REVISION=v1.0 TOOL_MODEL_REVISION=main \
    TRT_ENGINE_REVISION=0123456789abcdef0123456789abcdef01234567 HF_ENDPOINT=http://127.0.0.1:9 \
    BASE_IMAGE=local/bookworm:1 NO_CACHE=1 PLATFORM=linux/arm64
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  run first_build_args
  assert_line --index 0 --file
  assert_line --index 1 --regexp "/build-context\.[A-Za-z0-9]+/Dockerfile$"
  assert_line --index 2 --tag
  assert_line --index 3 "yap-text-api:trt-qwen30b-sm90"
  assert_line --index 4 --platform
  assert_line --index 5 linux/arm64
  assert_line --index 6 --no-cache
  local want
  for want in BASE_IMAGE=local/bookworm:1 HF_ENDPOINT=http://127.0.0.1:9 DEPLOY_MODE=both ENGINE=trt \
    CHAT_MODEL=yapwithai/qwen3-30b-trt-awq CHAT_MODEL_REVISION=v1.0 TOOL_MODEL=ProsusAI/finbert \
    TOOL_MODEL_REVISION=main TRT_ENGINE_REPO=yapwithai/qwen3-30b-trt-awq \
    TRT_ENGINE_LABEL=sm90_trt-llm-0.17.0_cuda12.8 TRT_ENGINE_REVISION=0123456789abcdef0123456789abcdef01234567; do
    assert_line "${want}"
  done
  # the build ran with BuildKit through the engine (Debian's client, no buildx)
  [[ "${stderr}" == *"BuildKit built into the Docker engine 20.10.24 (DOCKER_BUILDKIT=1"* ]]
}

@test "DEPLOY_MODE=chat passes no tool model; tool passes no chat model" {
  build_env_vllm
  DEPLOY_MODE=chat run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  run first_build_args
  assert_line "CHAT_MODEL=Qwen/Qwen3-8B-AWQ"
  refute_line --partial "TOOL_MODEL"
  rm "${STUB_DIR}/docker.build.args"
  DEPLOY_MODE=tool TAG=tool-x run --separate-stderr "${FIXTURE_REPO}/docker/vllm/build.sh"
  assert_success
  run first_build_args
  assert_line "TOOL_MODEL=ProsusAI/finbert"
  refute_line --partial "CHAT_MODEL"
}

@test "BAKE_MODELS: 1 unless set; a build argument and a label; a bad value stops before Docker" {
  build_env_tool
  run -0 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  run first_build_args
  assert_line "BAKE_MODELS=1"
  assert_line "text-inference.bake-models=1"
  rm "${STUB_DIR}/docker.build.args"
  BAKE_MODELS=0 run -0 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  run first_build_args
  assert_line "BAKE_MODELS=0"
  assert_line "text-inference.bake-models=0"
  rm "${STUB_DIR}/docker.build.args"
  BAKE_MODELS=no run -1 --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  [[ "${stderr}" == *"[build] ✗ BAKE_MODELS 'no' is not valid; use 0 or 1"* ]]
  assert [ ! -e "${STUB_DIR}/docker.build.args" ]
}

@test "HF_TOKEN reaches the build only as the hf_token secret: not in argv, build args, labels or output" {
  build_env_vllm
  export HF_TOKEN="hf_SeCrEt_t0ken_value" DOCKER_USERNAME=myuser DOCKER_TOKEN="dckr_SeCrEt" PUSH=1
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  # the real build's own output (stdout and stderr), before anything else replaces it
  assert_output "myuser/yap-text-api:vllm-qwen3"
  [[ -n "${stderr}" && "${stderr}" != *"hf_SeCrEt"* && "${stderr}" != *"dckr_SeCrEt"* ]]
  run first_build_args
  assert_line "--secret"
  assert_line "id=hf_token,env=HF_TOKEN"
  refute_line --partial "HF_TOKEN="
  # the docker process had the value in its environment (for env=HF_TOKEN), nowhere else
  assert_equal "$(cat "${STUB_DIR}/docker.build.env")" "HF_TOKEN set"
  run grep -rlF -e "hf_SeCrEt" -e "dckr_SeCrEt" "${STUB_DIR}/docker.calls" "${STUB_DIR}/docker.build.args"
  assert_failure 1
  DRY_RUN=1 run "${FIXTURE_REPO}/docker/build.sh" # stdout and stderr together
  assert_success
  assert_output --partial "--secret id=hf_token,env=HF_TOKEN"
  refute_output --partial "hf_SeCrEt"
  refute_output --partial "dckr_SeCrEt"
}

@test "no HF_TOKEN: no hf_token secret; BUILD_CA_BUNDLE: the ca_bundle secret; BUILD_NETWORK: --network" {
  build_env_tool
  printf 'PEM\n' >"${BATS_TEST_TMPDIR}/ca bundle.pem"
  BUILD_CA_BUNDLE="${BATS_TEST_TMPDIR}/ca bundle.pem" BUILD_NETWORK=host run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  run first_build_args
  refute_line --partial "hf_token"
  assert_line "id=ca_bundle,src=${BATS_TEST_TMPDIR}/ca bundle.pem"
  run grep -A1 -x -- --network "${STUB_DIR}/docker.build.args"
  assert_output $'--network\nhost'
}

@test "OCI labels: title, source without credentials, revision, created, and the build's own" {
  build_env_trt
  git -C "${FIXTURE_REPO}" init -q
  git -C "${FIXTURE_REPO}" -c user.email=t@t -c user.name=t commit -q --allow-empty -m init
  git -C "${FIXTURE_REPO}" remote add origin "https://someone:ghp_notshown@example.invalid/org/repo.git"
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  local commit
  commit="$(git -C "${FIXTURE_REPO}" rev-parse HEAD)"
  run first_build_args
  assert_line "org.opencontainers.image.title=yap-text-api"
  assert_line "org.opencontainers.image.source=https://example.invalid/org/repo.git"
  assert_line "org.opencontainers.image.revision=${commit}"
  assert_line --regexp '^org\.opencontainers\.image\.created=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'
  assert_line "text-inference.deploy-mode=chat"
  assert_line "text-inference.engine=trt"
  assert_line "text-inference.chat-model=yapwithai/qwen3-30b-trt-awq"
  assert_line "text-inference.trt-engine-label=sm90_trt-llm-0.17.0_cuda12.8"
  assert_line "VCS_REF=${commit}"
  refute_output --partial "ghp_notshown"
}

@test "OCI source label: an origin on the build host's disk (a path, file://) is left out" {
  build_env_tool
  git -C "${FIXTURE_REPO}" init -q
  git -C "${FIXTURE_REPO}" -c user.email=t@t -c user.name=t commit -q --allow-empty -m init
  local origin
  for origin in "${BATS_TEST_TMPDIR}/upstream repo" "file://${BATS_TEST_TMPDIR}/upstream" \
    "file://localhost${BATS_TEST_TMPDIR}/upstream" ../upstream; do
    git -C "${FIXTURE_REPO}" remote remove origin 2>/dev/null || true # none on the first round
    git -C "${FIXTURE_REPO}" remote add origin "${origin}"
    DRY_RUN=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
    assert_success
    refute_output --partial "image.source"
    refute_output --partial "SOURCE_URL"
    refute_output --partial "upstream"
    assert_output --partial "org.opencontainers.image.revision="
  done
  for origin in git@example.invalid:org/repo.git ssh://git@example.invalid/org/repo; do
    git -C "${FIXTURE_REPO}" remote set-url origin "${origin}"
    DRY_RUN=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
    assert_output --partial "org.opencontainers.image.source=${origin/ssh:\/\/git@/ssh://}"
  done
  # a SOURCE_URL you set is yours: used as given
  SOURCE_URL=/srv/git/repo DRY_RUN=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_output --partial "org.opencontainers.image.source=/srv/git/repo"
}

@test "DRY_RUN=1: validates, prints the exact command and the context's files, no docker call" {
  build_env_tool
  DRY_RUN=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_equal "$(stub_call_count docker)" 0
  [[ "${stderr}" == *"[validate] ✓ TOOL_MODEL 'ProsusAI/finbert'"* ]]
  [[ "${lines[0]}" == "docker build --file '${TMPDIR}/build-context."*"/Dockerfile' --tag yap-text-api:tool-finbert --platform linux/amd64 "* ]]
  [[ "${lines[0]}" == *" --label 'org.opencontainers.image.description=text inference, tool stack, DEPLOY_MODE=tool' "* ]]
  assert_line "# build context files:"
  local listed
  listed="$(printf '%s\n' "${output}" | sed '1,/^# build context files:$/d')"
  assert_equal "${listed}" "$(build_expected_context)"
  assert_equal "$(build_leftover_contexts)" ""
  # the printed command is a real shell command: it splits into the same words
  eval "set -- ${lines[0]}"
  assert_equal "$1 $2 $3" "docker build --file"
}

@test "VLLM_DEVICE=cpu: the CPU lock and cpu_alias.sh in the context, a Debian base, the device as build arg and label" {
  build_env_vllm
  cp "${PROJECT_ROOT}/docker/vllm/requirements-cpu.txt" "${PROJECT_ROOT}/docker/vllm/cpu_alias.sh" "${FIXTURE_REPO}/docker/vllm/"
  unset TAG
  VLLM_DEVICE=cpu run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  [[ "${stderr}" == *"[build] ENGINE=vllm DEPLOY_MODE=both VLLM_DEVICE=cpu → docker/vllm/build.sh"* ]]
  [[ "${stderr}" == *"[validate] ✓ VLLM_DEVICE 'cpu'"* ]]
  run first_build_args
  assert_line "yap-text-api:vllm-cpu-both"
  assert_line "BASE_IMAGE=debian:bookworm-slim"
  assert_line "VLLM_DEVICE=cpu"
  assert_line "text-inference.vllm-device=cpu"
  # the context the stub saw: the lock as requirements.txt, cpu_alias.sh beside it
  cmp "${STUB_DIR}/docker.build.requirements" "${PROJECT_ROOT}/docker/vllm/requirements-cpu.txt"
  grep -qx cpu_alias.sh "${STUB_DIR}/docker.build.context"
  # the default (cuda): today's build, untouched
  rm -f "${STUB_DIR}/docker.build.args"
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  run first_build_args
  assert_line "VLLM_DEVICE=cuda"
  refute_line --partial "BASE_IMAGE="
  assert_line "yap-text-api:vllm-both"
  cmp "${STUB_DIR}/docker.build.requirements" "${FIXTURE_REPO}/docker/vllm/requirements.txt"
  run ! grep -q cpu_alias "${STUB_DIR}/docker.build.context"
}

@test "VLLM_DEVICE: an unknown device, or cpu for the trt or tool stack, stops the build before Docker" {
  build_env_vllm
  VLLM_DEVICE=gpu run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"[validate] ✗ VLLM_DEVICE 'gpu' is not valid; use one of: cuda, cpu"* ]]
  build_env_trt
  VLLM_DEVICE=cpu run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"[validate] ✗ VLLM_DEVICE 'cpu' builds the vllm stack's cpu flavor, not this build (ENGINE=trt, DEPLOY_MODE=chat); use ENGINE=vllm with DEPLOY_MODE=chat or both, or unset VLLM_DEVICE"* ]]
  build_env_tool
  VLLM_DEVICE=cpu run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"VLLM_DEVICE 'cpu' builds the vllm stack's cpu flavor, not this build ("*"DEPLOY_MODE=tool)"* ]]
  assert_equal "$(stub_call_count docker)" 0
}

@test "DRY_RUN=1 still stops on a validation failure" {
  build_env_tool
  DRY_RUN=1 TOOL_MODEL=nobody/unknown run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_output ""
}

@test "PUSH=0: built, never pushed, no login" {
  build_env_vllm
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  run grep -cE '^(push|login)' "${STUB_DIR}/docker.calls"
  assert_output 0
}

@test "PUSH=1: logs in through stdin only, builds, then pushes" {
  build_env_vllm
  export PUSH=1 DOCKER_USERNAME=myuser DOCKER_PASSWORD="pa ss'word"
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_output "myuser/yap-text-api:vllm-qwen3"
  run grep -E '^(login|build|push) ' "${STUB_DIR}/docker.calls"
  assert_line --index 0 "login --username myuser --password-stdin"
  [[ "${lines[1]}" == "build "* ]]
  assert_line --index 2 "push myuser/yap-text-api:vllm-qwen3"
  assert_equal "$(cat "${STUB_DIR}/docker.login.stdin")" "pa ss'word"
  run ! grep -F "pa ss" "${STUB_DIR}/docker.calls"
}

@test "DOCKER_TOKEN wins over DOCKER_PASSWORD; a private registry gets its host" {
  build_env_tool
  export PUSH=1 DOCKER_USERNAME=me DOCKER_PASSWORD=pw DOCKER_TOKEN=tok IMAGE_REPO=registry.internal:5000/team/app
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  assert_equal "$(cat "${STUB_DIR}/docker.login.stdin")" "tok"
  run grep '^login' "${STUB_DIR}/docker.calls"
  assert_output "login --username me --password-stdin registry.internal:5000"
}

@test "already logged in (config.json holds the registry): no login" {
  build_env_tool
  mkdir -p "${HOME}/.docker"
  printf '{"auths": {"https://index.docker.io/v1/": {"auth": "x"}}}\n' >"${HOME}/.docker/config.json"
  PUSH=1 DOCKER_USERNAME=myuser run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  [[ "${stderr}" == *"already logged in to Docker Hub"* ]]
  assert_equal "$(grep -c '^login' "${STUB_DIR}/docker.calls")" 0
  assert_equal "$(grep -c '^push' "${STUB_DIR}/docker.calls")" 1
}

@test "pushing without credentials and not logged in fails before the build" {
  build_env_tool
  PUSH=1 DOCKER_USERNAME=myuser run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"not logged in to Docker Hub; set DOCKER_USERNAME and DOCKER_TOKEN"* ]]
  assert_equal "$(grep -c '^build ' "${STUB_DIR}/docker.calls")" 0
}

@test "a failed login names the registry and user, never the secret" {
  build_env_tool
  PUSH=1 DOCKER_USERNAME=myuser DOCKER_TOKEN=tok_hidden DOCKER_STUB_LOGIN_RC=1 run "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_output --partial "docker login to Docker Hub as myuser failed (status 1)"
  refute_output --partial "tok_hidden"
}

@test "push retry: the first push fails, a fresh login, the second succeeds" {
  build_env_tool
  mkdir -p "${HOME}/.docker"
  printf '{"auths": {"https://index.docker.io/v1/": {}}}\n' >"${HOME}/.docker/config.json"
  PUSH=1 DOCKER_USERNAME=myuser DOCKER_TOKEN=tok DOCKER_STUB_PUSH_FAILS=1 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_success
  run grep -E '^(login|push)' "${STUB_DIR}/docker.calls"
  assert_output $'push myuser/yap-text-api:tool-finbert\nlogin --username myuser --password-stdin\npush myuser/yap-text-api:tool-finbert'
}

@test "push fails twice: status 1 and a message naming the image" {
  build_env_tool
  PUSH=1 DOCKER_USERNAME=myuser DOCKER_TOKEN=tok DOCKER_STUB_PUSH_FAILS=2 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  assert_output ""
  [[ "${stderr}" == *"push of myuser/yap-text-api:tool-finbert failed twice"* ]]
  assert_equal "$(grep -c '^push' "${STUB_DIR}/docker.calls")" 2
}

@test "push fails, then the fresh login fails: said so, no second push, never 'failed twice'" {
  build_env_tool
  mkdir -p "${HOME}/.docker"
  printf '{"auths": {"https://index.docker.io/v1/": {}}}\n' >"${HOME}/.docker/config.json"
  PUSH=1 DOCKER_USERNAME=myuser DOCKER_TOKEN=tok_SeCrEt DOCKER_STUB_PUSH_FAILS=1 DOCKER_STUB_LOGIN_RC=1 \
    run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"docker login to Docker Hub as myuser failed (status 1)"* ]]
  [[ "${stderr}" == *"push of myuser/yap-text-api:tool-finbert failed and the fresh login failed too, so it was not retried"* ]]
  [[ "${stderr}" != *"failed twice"* && "${stderr}" != *"tok_SeCrEt"* ]]
  run grep -E '^(login|push)' "${STUB_DIR}/docker.calls"
  assert_output $'push myuser/yap-text-api:tool-finbert\nlogin --username myuser --password-stdin'
}

@test "a failed docker build: status 1, no push, context removed" {
  build_env_tool
  PUSH=1 DOCKER_USERNAME=myuser DOCKER_TOKEN=tok DOCKER_STUB_BUILD_RC=17 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh"
  assert_failure 1
  [[ "${stderr}" == *"docker build of myuser/yap-text-api:tool-finbert failed (status 17)"* ]]
  assert_equal "$(grep -c '^push' "${STUB_DIR}/docker.calls")" 0
  assert_equal "$(build_leftover_contexts)" ""
}

@test "extra docker build options after -- pass through; a secret among them is refused unshown" {
  build_env_tool
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh" -- --build-arg SKIP_ENGINE=1 --progress=plain
  assert_success
  run first_build_args
  assert_line "SKIP_ENGINE=1"
  assert_line "--progress=plain"
  HF_TOKEN=hf_abc123 run --separate-stderr "${FIXTURE_REPO}/docker/build.sh" -- --build-arg "X=hf_abc123"
  assert_failure 1
  [[ "${stderr}" == *"extra docker build argument #2 carries HF_TOKEN"* ]]
  [[ "${stderr}" != *"hf_abc123"* ]]
  run --separate-stderr "${FIXTURE_REPO}/docker/build.sh" -- --build-arg "DOCKER_PASSWORD=x"
  assert_failure 1
  assert_equal "$(grep -c '^build ' "${STUB_DIR}/docker.calls")" 1
}
