# shellcheck shell=bash
# The image reference (tag policy) and the argument list of `docker build`.
#
# Everything the build passes to Docker goes into the BUILD_ARGS array, one
# word per element. Secrets never become build arguments: HF_TOKEN and the CA
# bundle go in as BuildKit secrets (--secret), and every function here refuses
# a value that holds one.
#
# A library: functions and constants only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/build/defaults.sh
source "$(dirname "${BASH_SOURCE[0]}")/defaults.sh"

# Variables whose values must never reach argv, build arguments or labels.
BUILD_SECRET_VARS=(HF_TOKEN TEXT_API_KEY DOCKER_PASSWORD DOCKER_TOKEN)
# A Docker tag; an image repository ([host[:port]/]path, lower case).
BUILD_TAG_RE='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
BUILD_REPO_RE='^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$'
# A git remote on another host: http(s)/ssh/git://host…, or scp-like [user@]host:path.
BUILD_REMOTE_URL_RE='^((https?|ssh|git|git\+ssh|ssh\+git)://[^/]|([A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*:[^/])'
# Prefix of every custom (non-OCI) image label.
BUILD_LABEL_NS="text-inference"

# Check TAG against the tag policy: a valid Docker tag that starts with tool-
# (DEPLOY_MODE=tool), or with the engine's name (vllm-, trt-) for chat and both.
# The router (docker/build.sh) calls it before routing; build_resolve_image calls
# it again, for a stack's build.sh run on its own.
# Globals:   TAG, DEPLOY_MODE, ENGINE (read)
# Outputs:   the error on stderr, naming TAG, its value and a valid example
# Returns:   0 when valid, 1 otherwise
build_check_tag() {
  local tag="${TAG:-}" prefix engine_name
  if [[ ! "${tag}" =~ ${BUILD_TAG_RE} ]]; then
    log_err "[build]" "TAG '${tag}' is not a valid Docker tag; use letters, digits, '_', '.' and '-', at most 128 characters, not starting with '.' or '-'"
    return 1
  fi
  if [[ "${DEPLOY_MODE:-}" == tool ]]; then
    prefix="tool-"
    engine_name="tool-only"
  else
    prefix="${ENGINE:-}-"
    case "${ENGINE:-}" in vllm) engine_name="vLLM" ;; *) engine_name="TensorRT-LLM" ;; esac
  fi
  if [[ "${tag}" != "${prefix}"* ]]; then
    log_err "[build]" "TAG '${tag}' must start with '${prefix}' for ${engine_name} images (example: TAG=${prefix}${tag})"
    return 1
  fi
}

# Check TAG (build_check_tag) and the repository; print the full image reference.
# DOCKER_USERNAME (or IMAGE_REPO) is required when pushing, except in a dry run.
# Globals:   TAG, DEPLOY_MODE, ENGINE, IMAGE_REPO, DOCKER_USERNAME, IMAGE_NAME, PUSH,
#            DRY_RUN (read)
# Outputs:   the reference (repository:tag) on stdout; errors on stderr
# Returns:   0 when valid, 1 otherwise
build_resolve_image() {
  local repo
  build_check_tag || return 1
  if [[ -n "${IMAGE_REPO:-}" ]]; then
    repo="${IMAGE_REPO}"
  elif [[ -n "${DOCKER_USERNAME:-}" ]]; then
    repo="${DOCKER_USERNAME}/${IMAGE_NAME:-${BUILD_DEFAULT_IMAGE_NAME}}"
  elif [[ "${PUSH:-1}" == 1 && "${DRY_RUN:-0}" != 1 ]]; then
    log_err "[build]" "DOCKER_USERNAME is required when pushing (PUSH=1); set DOCKER_USERNAME, or IMAGE_REPO=<registry>/<path> for a private registry, or PUSH=0 to build only"
    return 1
  else
    # PUSH=0, or DRY_RUN=1 (nothing is pushed; the dry run says what a push would need)
    repo="${IMAGE_NAME:-${BUILD_DEFAULT_IMAGE_NAME}}"
  fi
  if [[ ! "${repo}" =~ ${BUILD_REPO_RE} ]]; then
    log_err "[build]" "image repository '${repo}' (from IMAGE_REPO, or DOCKER_USERNAME/IMAGE_NAME) is not valid; use lower-case [registry[:port]/]user/name (example: myuser/${BUILD_DEFAULT_IMAGE_NAME})"
    return 1
  fi
  printf '%s:%s\n' "${repo}" "${TAG}"
}

# Start BUILD_ARGS: --file, --tag, --platform, and --no-cache when NO_CACHE=1.
# Globals:   BUILD_ARGS (written), PLATFORM, NO_CACHE (read)
# Arguments: dockerfile image
init_build_args() {
  BUILD_ARGS=(--file "$1" --tag "$2" --platform "${PLATFORM:-linux/amd64}")
  if [[ "${NO_CACHE:-0}" == 1 ]]; then BUILD_ARGS+=(--no-cache); fi
  return 0
}

# Add `--build-arg NAME=value` for each named variable that is set and not empty.
# Globals:   BUILD_ARGS (appended), the named variables (read)
# Arguments: variable names...
# Returns:   1 (adding nothing more) when a name is a secret variable
build_args_add() {
  local name
  for name in "$@"; do
    if _build_secret_in "${name}" >/dev/null; then
      log_err "[build]" "${name} is a secret and never a build argument; it goes in as a BuildKit secret"
      return 1
    fi
    if [[ -n "${!name:-}" ]]; then BUILD_ARGS+=(--build-arg "${name}=${!name}"); fi
  done
  return 0
}

# Add the OCI labels (title, source, revision, created, version) and the
# build's own labels (deploy mode, engine, models, revisions, TRT label), plus
# the build arguments BUILD_DATE, VCS_REF and SOURCE_URL for the Dockerfile.
# BUILD_DATE, VCS_REF and SOURCE_URL win when set; otherwise they come from the
# clock and from git (the origin URL without any user or password in it; an origin
# on the build host's own disk, a path or file:// URL, gives no source at all).
# Globals:   BUILD_ARGS (appended); BUILD_DATE, VCS_REF, SOURCE_URL (written when
#            unset); IMAGE_NAME, TAG, DEPLOY_MODE and the named variables (read)
# Arguments: stack repository_root [variables to describe (DEPLOY_MODE, CHAT_MODEL …)]
# Returns:   1 when a named variable is a secret
build_args_add_labels() {
  local stack="$1" root="$2" name value label
  shift 2
  BUILD_DATE="${BUILD_DATE:-$(TZ=UTC date +%Y-%m-%dT%H:%M:%SZ)}"
  if command -v git >/dev/null 2>&1; then
    # Outside a git checkout (an unpacked tarball) both stay empty: the labels are then left out.
    VCS_REF="${VCS_REF:-$(timeout 10 git -C "${root}" rev-parse HEAD 2>/dev/null || true)}"
    if [[ -z "${SOURCE_URL:-}" ]]; then
      SOURCE_URL="$(timeout 10 git -C "${root}" remote get-url origin 2>/dev/null || true)"
      # a local path (or file://) would put the build host's directories into the image
      [[ "${SOURCE_URL}" =~ ${BUILD_REMOTE_URL_RE} ]] || SOURCE_URL=""
    fi
  fi
  if [[ "${SOURCE_URL:-}" =~ ^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@(.*)$ ]]; then
    SOURCE_URL="${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
  fi
  BUILD_ARGS+=(
    --label "org.opencontainers.image.title=${IMAGE_NAME:-${BUILD_DEFAULT_IMAGE_NAME}}"
    --label "org.opencontainers.image.description=text inference, ${stack} stack, DEPLOY_MODE=${DEPLOY_MODE:-}"
    --label "org.opencontainers.image.created=${BUILD_DATE}"
    --label "org.opencontainers.image.version=${TAG:-}"
  )
  if [[ -n "${SOURCE_URL:-}" ]]; then BUILD_ARGS+=(--label "org.opencontainers.image.source=${SOURCE_URL}"); fi
  if [[ -n "${VCS_REF:-}" ]]; then BUILD_ARGS+=(--label "org.opencontainers.image.revision=${VCS_REF}"); fi
  for name in "$@"; do
    if _build_secret_in "${name}" >/dev/null; then
      log_err "[build]" "${name} is a secret and never an image label"
      return 1
    fi
    value="${!name:-}"
    [[ -n "${value}" ]] || continue
    label="${name,,}"
    BUILD_ARGS+=(--label "${BUILD_LABEL_NS}.${label//_/-}=${value}")
  done
  build_args_add BUILD_DATE VCS_REF SOURCE_URL
}

# Add the host-side options: HF_TOKEN as the hf_token secret (by name only: its
# value stays in the environment), BUILD_CA_BUNDLE as the ca_bundle secret, and
# BUILD_NETWORK as --network.
# Globals:   BUILD_ARGS (appended), HF_TOKEN (exported when set), BUILD_CA_BUNDLE, BUILD_NETWORK
build_args_add_host_options() {
  if [[ -n "${HF_TOKEN:-}" ]]; then
    export HF_TOKEN
    BUILD_ARGS+=(--secret "id=hf_token,env=HF_TOKEN")
  fi
  if [[ -n "${BUILD_CA_BUNDLE:-}" ]]; then
    local bundle
    bundle="$(cd "$(dirname "${BUILD_CA_BUNDLE}")" && pwd)/$(basename "${BUILD_CA_BUNDLE}")"
    BUILD_ARGS+=(--secret "id=ca_bundle,src=${bundle}")
  fi
  if [[ -n "${BUILD_NETWORK:-}" ]]; then BUILD_ARGS+=(--network "${BUILD_NETWORK}"); fi
  return 0
}

# Add the user's extra `docker build` arguments (given after `--`), refusing
# any that names a secret variable or holds a secret's value.
# Globals:   BUILD_ARGS (appended), BUILD_SECRET_VARS and their values (read)
# Arguments: extra arguments...
# Returns:   1 (adding none) when one carries a secret; the argument is not shown
build_args_add_extra() {
  local arg secret position=0
  for arg in "$@"; do
    position=$((position + 1))
    if secret="$(_build_secret_in "${arg}" --values)"; then
      log_err "[build]" "extra docker build argument #${position} carries ${secret}; secrets never go in as arguments (HF_TOKEN reaches the build as the hf_token secret by itself)"
      return 1
    fi
  done
  BUILD_ARGS+=("$@")
}

# Print the secret variable (BUILD_SECRET_VARS) that a word names: the name
# itself or NAME=…; with --values, also one whose value the word holds.
# Globals:   BUILD_SECRET_VARS and, with --values, their values (read)
# Arguments: word [--values]
# Outputs:   the variable's name (never its value); nothing when none
# Returns:   0 when the word names or carries a secret, 1 otherwise
_build_secret_in() {
  local word="$1" values="${2:-}" secret
  for secret in "${BUILD_SECRET_VARS[@]}"; do
    if [[ "${word}" == "${secret}" || "${word}" == *"${secret}="* ||
      ("${values}" == --values && -n "${!secret:-}" && "${word}" == *"${!secret}"*) ]]; then
      printf '%s\n' "${secret}"
      return 0
    fi
  done
  return 1
}
