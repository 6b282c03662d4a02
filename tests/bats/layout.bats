#!/usr/bin/env bats
# The architecture rule of docker/common/README.md ("Script architecture") that a test can
# check: nothing under docker/ sources or calls the host orchestration under the repository
# root scripts/ (the dependency only goes the other way).
# shellcheck disable=SC2016 # the planted lines are code to find, never to expand

load 'helpers/common'

setup() {
  common_setup
}

# Print "file:line:text" for every line of a file under ROOT/docker (Markdown aside) that
# names ROOT/scripts: a path through one of its entries (scripts/lib/…, scripts/test.sh …),
# or ../ steps that lead from the file's directory to it.
# Arguments: root (a repository: docker/ and scripts/)
root_script_refs() {
  local root="$1" entry names=() file lineno dots
  for entry in "${root}"/scripts/*; do names+=("${entry##*/}"); done
  local alternatives
  alternatives="$(printf '%s\n' "${names[@]}" | sed 's/[.]/\\./g' | paste -sd'|')"
  # no match is the good outcome (grep's status 1)
  grep -rnE --exclude='*.md' -- "(^|[^A-Za-z0-9_.-])scripts/(${alternatives})([^A-Za-z0-9_.-]|$)" \
    "${root}/docker" || true
  while IFS=: read -r file lineno dots; do
    if [[ "$(realpath -m -- "$(dirname -- "${file}")/${dots}scripts")" == "${root}/scripts" ]]; then
      printf '%s:%s:%sscripts\n' "${file}" "${lineno}" "${dots}"
    fi
  done < <(grep -rnoE --exclude='*.md' -- '(\.\./)+scripts' "${root}/docker" | sed -E 's/scripts$//' || true)
}

@test "nothing under docker/ names the root scripts/ (by path or by ../ steps)" {
  run -0 root_script_refs "${PROJECT_ROOT}"
  assert_output ""
}

@test "the check is not blind: no scripts/ directory under docker/ has an entry named as one of the root scripts/" {
  local entry dir clashes=()
  for dir in "${PROJECT_ROOT}"/docker/*/scripts "${PROJECT_ROOT}"/docker/*/scripts/*/; do
    for entry in "${PROJECT_ROOT}"/scripts/*; do
      [[ ! -e "${dir%/}/${entry##*/}" ]] || clashes+=("${dir%/}/${entry##*/}")
    done
  done
  assert_equal "${clashes[*]:-}" ""
}

@test "planted references are found: a root helper sourced by path, a script reached by ../ steps" {
  local root="${BATS_TEST_TMPDIR}/repo copy"
  mkdir -p "${root}"
  cp -r "${PROJECT_ROOT}/docker" "${PROJECT_ROOT}/scripts" "${root}/"
  printf '%s\n' 'source "${ROOT_DIR}/scripts/lib/container.sh"' >>"${root}/docker/tool/scripts/main.sh"
  printf '%s\n' 'cd "$(dirname "${BASH_SOURCE[0]}")/../../../../scripts" && ./demo.sh' \
    >>"${root}/docker/common/scripts/build/defaults.sh"
  # what the layer itself does stays allowed: its own scripts, the image's, ../ inside docker/
  printf '%s\n' 'source "${APP_ROOT}/scripts/env/defaults.sh"' '"$(dirname "$0")/../scripts/main.sh"' \
    >>"${root}/docker/vllm/scripts/main.sh"
  run -0 root_script_refs "${root}"
  assert_equal "${#lines[@]}" 2
  assert_line "${root}/docker/tool/scripts/main.sh:$(wc -l <"${root}/docker/tool/scripts/main.sh"):source \"\${ROOT_DIR}/scripts/lib/container.sh\""
  assert_line "${root}/docker/common/scripts/build/defaults.sh:$(wc -l <"${root}/docker/common/scripts/build/defaults.sh"):../../../../scripts"
}
