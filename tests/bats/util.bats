#!/usr/bin/env bats
# docker/common/scripts/util.sh, and the rule it serves: no literal /app in the runtime scripts
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031
# Scripts for `bash -c` and expected texts hold literal $ expressions, so they are single-quoted:
# shellcheck disable=SC2016

load 'helpers/common'

setup() {
  common_setup
  unset APP_ROOT
  set -u
  # shellcheck source=docker/common/scripts/util.sh
  source "${COMMON_SCRIPTS}/util.sh"
}

@test "no literal /app in the code of docker/common/scripts: paths come from util_app_root" {
  # every line that is not a comment and names /app as a path (not /application, /apps …)
  run bash -c 'grep -rnE "/app([^A-Za-z0-9_.-]|$)" "$1" | grep -vE "^[^:]+:[0-9]+:[[:space:]]*#"' _ "${COMMON_SCRIPTS}"
  assert_failure 1 # grep found nothing
  assert_output ""
  # the check itself finds such a line
  mkdir -p "${BATS_TEST_TMPDIR}/scripts"
  printf '# a comment about /app\nroot="${APP_ROOT:-/app}"\n' >"${BATS_TEST_TMPDIR}/scripts/x.sh"
  run bash -c 'grep -rnE "/app([^A-Za-z0-9_.-]|$)" "$1" | grep -vE "^[^:]+:[0-9]+:[[:space:]]*#"' _ "${BATS_TEST_TMPDIR}/scripts"
  assert_success
  assert_output --partial 'x.sh:2:root="${APP_ROOT:-/app}"'
}

@test "util_app_root: APP_ROOT, else two levels above common/scripts, from any directory" {
  APP_ROOT="/srv/my app" run -0 util_app_root
  assert_output "/srv/my app"
  local layout="${BATS_TEST_TMPDIR}/image root"
  mkdir -p "${layout}/common/scripts"
  cp "${COMMON_SCRIPTS}/util.sh" "${layout}/common/scripts/"
  cd /
  run -0 bash -uc 'source "$1/common/scripts/util.sh"; util_app_root' _ "${layout}"
  assert_output "${layout}"
  cd "${layout}/common/scripts"
  run -0 bash -uc 'source util.sh; util_app_root'
  assert_output "${layout}"
}

@test "util_app_root is what settings.sh and the GPU probe use" {
  local root="${BATS_TEST_TMPDIR}/app root"
  mkdir -p "${root}/pyhelpers"
  printf 'LOG_LEVEL=debug\n' >"${root}/image.env"
  # a pyhelpers.gpu stand-in that tells where it was imported from
  printf 'import sys\nprint("GPU_COUNT=1\\nGPU_NAME=from app root\\nGPU_COMPUTE_CAP=9.0\\nGPU_MEMORY_MIB=1024")\n' \
    >"${root}/pyhelpers/gpu.py"
  touch "${root}/pyhelpers/__init__.py"
  hide_programs nvidia-smi
  nvml_library_present # or detection would not ask the NVML helper
  cd "${BATS_TEST_TMPDIR}" # python -m imports from the working directory first
  run -0 --separate-stderr env APP_ROOT="${root}" LOG_LEVEL=debug bash -uc 'source "$1/settings.sh"; source "$1/gpu.sh"
    settings_image_value LOG_LEVEL; gpu_detect_name' _ "${COMMON_SCRIPTS}"
  assert_output $'debug\nfrom app root'
}

@test "util_trim: blanks around a value go, inner ones stay; array elements too" {
  local v=$' \t two words \n' fields=(" a " "b  ")
  util_trim v
  assert_equal "${v}" "two words"
  util_trim "fields[0]"
  util_trim "fields[1]"
  assert_equal "${fields[0]}|${fields[1]}" "a|b"
  local blank="   " _util_value=" clash "
  util_trim blank
  util_trim _util_value # a caller's variable named like the helper's local
  assert_equal "[${blank}][${_util_value}]" "[][clash]"
}

@test "util_printable: control characters become ?, the rest stays, no new line added" {
  run -0 util_printable $'chat\nrm\e[31m -rf\t'
  assert_output 'chat?rm?[31m -rf?'
  run -0 util_printable '$(id) é'
  assert_output '$(id) é'
}

@test "util_pid_gone: a running process, a zombie, an ended one" {
  # a parent that never waits: its child stays a zombie until the parent ends
  bash -c 'sleep 0.2 & echo "$!" >"$1"; exec sleep 30' _ "${BATS_TEST_TMPDIR}/child" 3>&- &
  local parent=$! child
  wait_until() { # poll a command for at most 5 s
    local deadline=$((SECONDS + 5))
    until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.05; done
  }
  wait_until test -s "${BATS_TEST_TMPDIR}/child"
  child="$(<"${BATS_TEST_TMPDIR}/child")"
  run -1 util_pid_gone "${parent}"
  wait_until util_pid_gone "${child}" || fail "the ended child ${child} still counts as running"
  run -0 grep -q '^[0-9]* ([^)]*) Z' "/proc/${child}/stat" # it counted as gone because a zombie
  kill -TERM "${parent}"
  wait "${parent}" || true # 143: it was terminated
  run -0 util_pid_gone "${parent}"
  run -0 util_pid_gone 999999999
}

@test "library: sourcing sets no shell options, works under set -u, twice" {
  run bash -c "set -u; before=\$(set +o); source '${COMMON_SCRIPTS}/util.sh'; source '${COMMON_SCRIPTS}/util.sh'
    v=' x '; util_trim v; [[ \"\$(set +o)\" == \"\${before}\" ]] && echo \"same \${v}\""
  assert_success
  assert_output "same x"
}
