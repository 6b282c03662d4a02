# shellcheck shell=bash
# The build context: a fresh temporary directory holding exactly what a
# stack's Dockerfile copies, laid out as the image's /app:
#   Dockerfile .dockerignore requirements.txt src/ pyhelpers/ scripts/
#   common/scripts/ common/download/ [download/] [wheels/] [local/chat/] [local/tool/]
# Its Dockerfile is assembled: the stack's own, then the runtime stage every stack
# shares (BUILD_DOCKERFILE_FRAGMENT); build_dockerfile_assemble is the one place that
# does it, for the build and for the project's lint alike.
# Caches (__pycache__, *.pyc, .pytest_cache, .ruff_cache, .mypy_cache), tests and
# what only the build host runs (BUILD_CONTEXT_HOST_ONLY) are left out; symbolic
# links are copied as the files they point to. Runtime tests assemble the image
# layout with the same function.
#
# A library: functions and constants only, no options set, safe under `set -u`.

# shellcheck source=docker/common/scripts/logs.sh
source "$(dirname "${BASH_SOURCE[0]}")/../logs.sh"

# What never goes into a context (tar --exclude patterns).
BUILD_CONTEXT_EXCLUDES=(__pycache__ '*.pyc' '*.pyo' .pytest_cache .ruff_cache .mypy_cache tests 'test_*.py' '*_test.py')
# What only the build host runs, as paths in the context (common/ is docker/common/): the
# build libraries, the model validator and the value shapes only it checks stay out of
# every context, so out of every image.
BUILD_CONTEXT_HOST_ONLY=(common/scripts/build common/download/validate.py pyhelpers/value_rules.py)
# The final stage every stack's Dockerfile is completed with (relative to the repository root).
BUILD_DOCKERFILE_FRAGMENT=docker/common/Dockerfile.runtime

# Make the build context of a stack and print its path. The stack directory
# is docker/<stack>; the repository root is two levels above it. On failure
# the directory is removed before returning. Call it directly (not in $(…))
# when BUILD_CONTEXT_DIR is to be set, so that build_context_cleanup, run
# from the caller's EXIT/INT/TERM trap, removes it even after an interruption.
# Globals:   BUILD_CONTEXT_DIR (written), PIP_WHEELHOUSE, TMPDIR (read)
# Arguments: stack_dir requirements_file include_stack_download(0|1) [tmp_prefix]
# Outputs:   the context directory on stdout
# Returns:   0 on success, 1 with a message naming the missing piece otherwise
prepare_build_context_common() {
  local stack_dir="$1" requirements="$2" include_download="$3" prefix="${4:-build-context}"
  local root dir
  if [[ ! -d "${stack_dir}" ]]; then
    log_err "[build]" "stack directory '${stack_dir}' does not exist"
    return 1
  fi
  root="$(build_repo_root "${stack_dir}")" || return 1
  dir="$(mktemp -d "${TMPDIR:-/tmp}/${prefix}.XXXXXX")" || {
    log_err "[build]" "cannot make a temporary directory under ${TMPDIR:-/tmp} (TMPDIR)"
    return 1
  }
  BUILD_CONTEXT_DIR="${dir}"
  if ! _build_context_fill "${dir}" "${root}" "${stack_dir}" "${requirements}" "${include_download}"; then
    rm -rf -- "${dir}"
    BUILD_CONTEXT_DIR=""
    return 1
  fi
  printf '%s\n' "${dir}"
}

# Print the repository root of a stack directory (docker/<stack>, two levels
# below it), as an absolute path.
# Arguments: stack_dir
# Outputs:   the root on stdout
# Returns:   1 when the directory cannot be entered
build_repo_root() {
  (cd "$1/../.." && pwd)
}

# Print the Dockerfile a stack is built from: docker/<stack>/Dockerfile (stages base,
# builder, models and stack: what differs), then BUILD_DOCKERFILE_FRAGMENT (the runtime
# stage, FROM stack), each ending in a newline. No docker call.
# Globals:   BUILD_DOCKERFILE_FRAGMENT (read)
# Arguments: stack_dir
# Outputs:   the assembled Dockerfile on stdout
# Returns:   1 with a one-line message naming the missing file
build_dockerfile_assemble() {
  local stack_dir="$1" root file
  local files=("${stack_dir}/Dockerfile")
  if [[ -f "${files[0]}" ]]; then
    root="$(build_repo_root "${stack_dir}")" || return 1
    files+=("${root}/${BUILD_DOCKERFILE_FRAGMENT}")
  fi
  for file in "${files[@]}"; do
    if [[ ! -f "${file}" ]]; then
      log_err "[build]" "missing '${file}': a stack's Dockerfile is docker/<stack>/Dockerfile followed by ${BUILD_DOCKERFILE_FRAGMENT}, and both must exist"
      return 1
    fi
  done
  # awk 1: every line as it is, plus the newline a file may lack at its end
  awk 1 "${files[@]}"
}

# Copy every piece of the context into dir.
# Arguments: dir root stack_dir requirements_file include_stack_download
# Returns:   1 with a message when a piece is missing or a copy fails
_build_context_fill() {
  local dir="$1" root="$2" stack_dir="$3" requirements="$4" include_download="$5" file
  for file in "${stack_dir}/.dockerignore" "${requirements}"; do
    if [[ ! -f "${file}" ]]; then
      log_err "[build]" "missing '${file}': the stack's .dockerignore and requirements file must exist"
      return 1
    fi
  done
  build_dockerfile_assemble "${stack_dir}" >"${dir}/Dockerfile" &&
    cp -- "${stack_dir}/.dockerignore" "${dir}/" &&
    cp -- "${requirements}" "${dir}/requirements.txt" &&
    _build_context_copy_tree "${root}/src" "${dir}" src &&
    _build_context_copy_tree "${root}/pyhelpers" "${dir}" pyhelpers &&
    _build_context_copy_tree "${stack_dir}/scripts" "${dir}" scripts &&
    _build_context_copy_tree "${root}/docker/common/scripts" "${dir}" common/scripts &&
    _build_context_copy_tree "${root}/docker/common/download" "${dir}" common/download || return 1
  if [[ "${include_download}" == 1 ]]; then
    _build_context_copy_tree "${stack_dir}/download" "${dir}" download || return 1
  fi
  if [[ -n "${PIP_WHEELHOUSE:-}" ]]; then
    _build_context_copy_tree "${PIP_WHEELHOUSE}" "${dir}" wheels || return 1
  fi
  return 0
}

# Copy a directory tree into the context without caches, tests and host-only files.
# Globals:   BUILD_CONTEXT_EXCLUDES, BUILD_CONTEXT_HOST_ONLY (read)
# Arguments: source context_dir destination (relative to the context)
# Returns:   1 with a message when the source is missing or the copy fails
_build_context_copy_tree() {
  local src="$1" dst="$2/$3" rel="$3" pattern
  local excludes=()
  if [[ ! -d "${src}" ]]; then
    log_err "[build]" "missing directory '${src}' for the build context"
    return 1
  fi
  for pattern in "${BUILD_CONTEXT_EXCLUDES[@]}"; do excludes+=(--exclude="${pattern}"); done
  # host-only paths under this destination, anchored at its top (./build, not any build)
  excludes+=(--anchored)
  for pattern in "${BUILD_CONTEXT_HOST_ONLY[@]}"; do
    [[ "${pattern}" != "${rel}/"* ]] || excludes+=(--exclude="./${pattern#"${rel}/"}")
  done
  mkdir -p -- "${dst}" || return 1
  # --dereference: a link (download/utils.py → common/download/utils.py) becomes a file.
  tar -C "${src}" --dereference "${excludes[@]}" -cf - . | tar -C "${dst}" -xf -
  if [[ "${PIPESTATUS[*]}" != "0 0" ]]; then
    log_err "[build]" "copying '${src}' into the build context failed"
    return 1
  fi
}

# Copy a local model directory (a CHAT_MODEL or TOOL_MODEL that validate.py
# accepted as an absolute path to a directory) into the context as local/<kind>/,
# where the Dockerfile's models stage picks it up, and print the neutral value
# the build passes to Docker instead of the host path: local:<basename>.
# Symbolic links are followed when they stay inside the directory; one that
# points outside it (or nowhere) is an error. Nothing is left out (a model's
# own tests or caches are its files).
# Arguments: context_dir kind(chat|tool) source_dir
# Outputs:   local:<basename> on stdout; a progress line with the size on stderr
# Returns:   1 with a message naming the link or the failed copy
build_context_add_local_model() {
  local dir="$1" kind="$2" src="$3" real link target size name
  real="$(realpath -e -- "${src}")" || {
    log_err "[build]" "local ${kind} model '${src}' cannot be resolved"
    return 1
  }
  while IFS= read -r -d '' link; do
    target="$(realpath -e -- "${link}" 2>/dev/null || true)" # a dangling link: empty, refused below
    if [[ -z "${target}" || ("${target}" != "${real}" && "${target}" != "${real}/"*) ]]; then
      log_err "[build]" "local ${kind} model '${src}': the link '${link#"${real}/"}' points outside the directory (or nowhere); copy the file in instead"
      return 1
    fi
  done < <(find "${real}" -type l -print0)
  size="$(find -L "${real}" -type f -printf '%s\n' | awk '{ total += $1 } END { print total + 0 }')"
  name="$(basename -- "${real}")"
  log_info "[build]" "copying the local ${kind} model '${name}' ($(numfmt --to=iec-i --suffix=B "${size:-0}")) into the build context as local/${kind}/"
  mkdir -p -- "${dir}/local/${kind}" || return 1
  tar -C "${real}" --dereference -cf - . | tar -C "${dir}/local/${kind}" -xf -
  if [[ "${PIPESTATUS[*]}" != "0 0" ]]; then
    log_err "[build]" "copying the local ${kind} model '${src}' into the build context failed"
    return 1
  fi
  printf 'local:%s\n' "${name}"
}

# Print the files of a context, one relative path a line, sorted.
# Arguments: context_dir
build_context_list() {
  (cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort)
}

# Remove BUILD_CONTEXT_DIR when set; run it from the caller's EXIT/INT/TERM trap.
# Globals:   BUILD_CONTEXT_DIR (read, then emptied)
build_context_cleanup() {
  if [[ -n "${BUILD_CONTEXT_DIR:-}" && -d "${BUILD_CONTEXT_DIR}" ]]; then
    rm -rf -- "${BUILD_CONTEXT_DIR}"
  fi
  BUILD_CONTEXT_DIR=""
}
