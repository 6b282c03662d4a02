# shellcheck shell=bash
# The build flow every stack build script (docker/<stack>/build.sh) runs:
#   check the settings → validate the models → tag policy → build context →
#   docker build → push.
# Validation failures stop everything before Docker is touched. The build
# context is removed on success, failure and interruption (INT, TERM).
#
# A library: functions and constants only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/build/defaults.sh
source "$(dirname "${BASH_SOURCE[0]}")/defaults.sh"
# shellcheck source=docker/common/scripts/build/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh"
# shellcheck source=docker/common/scripts/build/docker.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker.sh"
# shellcheck source=docker/common/scripts/build/context.sh
source "$(dirname "${BASH_SOURCE[0]}")/context.sh"
# shellcheck source=docker/common/scripts/build/validate.sh
source "$(dirname "${BASH_SOURCE[0]}")/validate.sh"

# Build (and push) the image of one stack, configured by the environment.
# Arguments after `--` go to `docker build` as they are (never a secret).
# Globals:   every build variable (see docker/common/README.md)
# Arguments: stack stack_dir script [--help] [-- docker-build-args...]
# Outputs:   --help: the script's usage; DRY_RUN=1: the docker build command and
#            the context's files; otherwise the image reference, on stdout
# Returns:   0 on success, 1 on a failed check or step, 127 without docker
build_stack_main() {
  local stack="$1" stack_dir="$2" script="$3"
  shift 3
  local extra=()
  while (($#)); do
    case "$1" in
      -h | --help)
        log_usage "${script}"
        return 0
        ;;
      --)
        shift
        extra=("$@")
        break
        ;;
      *)
        log_err "[build]" "unknown argument '$1'; settings are environment variables, docker build options go after '--' (see ${script##*/} --help)"
        return 1
        ;;
    esac
  done
  build_init_defaults "${stack}" || return 1
  log_check_config || return 1
  _build_check_stack "${stack}" || return 1
  build_check_options || return 1

  log_section "[build]" "validating the ${stack} build (DEPLOY_MODE=${DEPLOY_MODE})"
  local chat="" tool="" trt_repo="" trt_label=""
  if [[ "${DEPLOY_MODE}" != tool ]]; then chat="${CHAT_MODEL:-}"; fi
  if [[ "${DEPLOY_MODE}" != chat ]]; then tool="${TOOL_MODEL:-}"; fi
  if [[ "${stack}" == trt && -n "${chat}" ]]; then
    trt_repo="${TRT_ENGINE_REPO:-}"
    trt_label="${TRT_ENGINE_LABEL:-}"
  fi
  validate_models_for_deploy_common "${ENGINE:-}" "${DEPLOY_MODE}" "${chat}" "${tool}" "${trt_repo}" "${trt_label}" || return 1
  local local_dir=""
  if [[ "${tool}" == /* ]]; then local_dir="${tool}"; fi
  if [[ "${chat}" == /* ]]; then local_dir="${chat}"; fi
  if [[ "${BAKE_MODELS}" == 0 && -n "${local_dir}" ]]; then
    log_err "[build]" "BAKE_MODELS=0 leaves the models to main.sh --download-models, which fetches them from the Hub, but '${local_dir}' is a local directory: bake it (BAKE_MODELS=1), or publish it to a Hub mirror"
    return 1
  fi
  local image
  image="$(build_resolve_image)" || return 1

  trap build_context_cleanup EXIT
  trap '_build_on_signal INT' INT
  trap '_build_on_signal TERM' TERM
  local include_download=1 requirements="${stack_dir}/requirements.txt"
  if [[ "${stack}" == tool ]]; then include_download=0; fi
  # vLLM's CPU build: its complete lock becomes the context's requirements.txt, and the
  # builder stage runs cpu_alias.sh (the Dockerfile installs it with --no-deps).
  if [[ "${VLLM_DEVICE:-}" == cpu ]]; then requirements="${stack_dir}/requirements-cpu.txt"; fi
  prepare_build_context_common "${stack_dir}" "${requirements}" "${include_download}" >/dev/null || return 1
  if [[ "${VLLM_DEVICE:-}" == cpu ]]; then
    cp -- "${stack_dir}/cpu_alias.sh" "${BUILD_CONTEXT_DIR}/" || return 1
  fi
  # validate.py accepted an absolute path only as a local directory: it goes into the
  # context, and Docker sees local:<basename>, never the host path.
  if [[ "${chat}" == /* ]]; then
    CHAT_MODEL="$(build_context_add_local_model "${BUILD_CONTEXT_DIR}" chat "${chat}")" || return 1
  fi
  if [[ "${tool}" == /* ]]; then
    TOOL_MODEL="$(build_context_add_local_model "${BUILD_CONTEXT_DIR}" tool "${tool}")" || return 1
  fi
  _build_collect_args "${stack}" "${stack_dir}" "${image}" "${chat}" "${tool}" "${trt_repo}" "${trt_label}" || return 1
  build_args_add_extra "${extra[@]}" || return 1

  if [[ "${DRY_RUN}" == 1 ]]; then
    _build_print_dry_run "${image}"
    return 0
  fi
  require_docker || return $?
  ensure_docker_login "${image}" || return 1
  docker_build_image "${BUILD_CONTEXT_DIR}" "${image}" || return 1
  build_context_cleanup
  if [[ "${PUSH}" == 1 ]]; then docker_push_image "${image}" || return 1; fi
  printf '%s\n' "${image}"
}

# Check that ENGINE and DEPLOY_MODE fit the stack being built.
# Globals:   ENGINE, DEPLOY_MODE (read)
# Arguments: stack
# Returns:   1 with a message naming the variable otherwise
_build_check_stack() {
  local stack="$1"
  # A DEPLOY_MODE that is no mode at all is validate.py's to report (one check, one list).
  if [[ "${stack}" == tool && "${DEPLOY_MODE}" != tool ]]; then
    log_err "[build]" "DEPLOY_MODE '${DEPLOY_MODE}' cannot be built by the tool stack (tool only); use docker/build.sh with ENGINE=vllm or ENGINE=trt for chat"
    return 1
  fi
  if [[ "${stack}" != tool && "${ENGINE}" != "${stack}" ]]; then
    log_err "[build]" "ENGINE '${ENGINE}' does not match the ${stack} stack; use ENGINE=${stack}, or docker/build.sh to route by ENGINE"
    return 1
  fi
}

# Fill BUILD_ARGS: file, tag, platform, the build arguments of the deploy
# mode, labels, secrets and network.
# Arguments: stack stack_dir image chat_model tool_model trt_repo trt_label
_build_collect_args() {
  local stack="$1" stack_dir="$2" image="$3"
  local root
  root="$(build_repo_root "${stack_dir}")" || return 1
  local described=(DEPLOY_MODE BAKE_MODELS)
  if [[ "${stack}" != tool ]]; then described+=(ENGINE); fi
  if [[ "${stack}" == vllm ]]; then described+=(VLLM_DEVICE); fi
  if [[ -n "$4" ]]; then described+=(CHAT_MODEL CHAT_MODEL_REVISION); fi
  if [[ -n "$5" ]]; then described+=(TOOL_MODEL TOOL_MODEL_REVISION); fi
  if [[ -n "$6" ]]; then
    TRT_ENGINE_REPO="$6"
    described+=(TRT_ENGINE_REPO TRT_ENGINE_LABEL TRT_ENGINE_REVISION)
  fi
  init_build_args "${BUILD_CONTEXT_DIR}/Dockerfile" "${image}"
  build_args_add BASE_IMAGE HF_ENDPOINT "${described[@]}" || return 1
  build_args_add_labels "${stack}" "${root}" "${described[@]}" || return 1
  build_args_add_host_options
}

# DRY_RUN=1: print the exact docker build command (secrets by name only), the
# push that would follow (PUSH=1), and the files of the context. Nothing needs
# DOCKER_USERNAME here; a push without it or IMAGE_REPO is flagged with a warning.
# Globals:   BUILD_ARGS, BUILD_CONTEXT_DIR, PUSH, DOCKER_USERNAME, IMAGE_REPO (read)
# Arguments: image
_build_print_dry_run() {
  local image="$1" cmd="docker build" arg quote="'" escaped="'\\''"
  for arg in "${BUILD_ARGS[@]}" "${BUILD_CONTEXT_DIR}"; do
    if [[ "${arg}" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      cmd+=" ${arg}"
    else
      cmd+=" '${arg//"${quote}"/"${escaped}"}'"
    fi
  done
  log_info "[build]" "DRY_RUN=1: nothing is built; the command and the context's files follow on stdout"
  printf '%s\n' "${cmd}"
  if [[ "${PUSH}" == 1 ]]; then
    printf 'docker push %s\n' "${image}"
    if [[ -z "${DOCKER_USERNAME:-}" && -z "${IMAGE_REPO:-}" ]]; then
      log_warn "[build]" "a real push needs DOCKER_USERNAME (or IMAGE_REPO) for the repository and a login; PUSH=0 builds only"
    fi
  fi
  printf '# build context files:\n'
  build_context_list "${BUILD_CONTEXT_DIR}"
}

# Trap handler: stop the running docker call, remove the context, and die of
# the same signal (status 128+N).
# Globals:   BUILD_CHILD_PID (read)
# Arguments: signal name (INT or TERM)
_build_on_signal() {
  local sig="$1"
  if [[ -n "${BUILD_CHILD_PID:-}" ]]; then
    kill -TERM "${BUILD_CHILD_PID}" 2>/dev/null || true # it may have ended already
    wait "${BUILD_CHILD_PID}" 2>/dev/null || true       # its status no longer matters
  fi
  build_context_cleanup
  log_warn "[build]" "interrupted (SIG${sig}); the build context was removed"
  trap - "${sig}" EXIT
  kill -s "${sig}" "$$"
}
