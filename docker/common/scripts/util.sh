# shellcheck shell=bash
# Small helpers more than one runtime library needs, kept in one place:
#   util_app_root          where the runtime finds src/, pyhelpers/, scripts/ (APP_ROOT)
#   util_trim NAME         strip the blanks around a variable's value, in place
#   util_printable VALUE   a value with control characters shown as '?' (for one-line messages)
#   util_pid_gone PID      whether a process has ended (a zombie counts as ended)
#   util_run_python SECS MODULE ARGS…   python3 -m MODULE (pyhelpers.gpu, src.config), APP_ROOT's code
#
# A library: functions only, no options set, safe under `set -u`; sourcing it
# again is harmless. None of them starts a program except util_app_root when
# APP_ROOT is unset (one `cd`/`pwd` subshell) and util_run_python (python3).

# Print the application root: APP_ROOT, else the directory two levels above this
# file (common/scripts/ sits in the application root of the image). The one place
# that knows the default: no runtime script names the image's path itself.
# Globals:   APP_ROOT (read)
# Outputs:   the directory on stdout
util_app_root() {
  if [[ -n "${APP_ROOT:-}" ]]; then
    printf '%s\n' "${APP_ROOT}"
    return 0
  fi
  local here="${BASH_SOURCE[0]%/*}"
  [[ "${here}" != "${BASH_SOURCE[0]}" ]] || here=. # sourced by a bare file name
  (cd "${here}/../.." && pwd)
}

# Strip leading and trailing blanks (spaces, tabs, new lines) from a variable,
# in place; an array element such as 'fields[1]' works too.
# Arguments: name of the variable
util_trim() {
  # positional parameters, not locals: a local would hide a caller's variable of that name
  set -- "$1" "${!1-}"
  set -- "$1" "${2#"${2%%[![:space:]]*}"}"
  set -- "$1" "${2%"${2##*[![:space:]]}"}"
  printf -v "$1" '%s' "$2"
}

# Print a value with every non-printable character (new line, escape …) as '?',
# so a message quoting a user's value stays on one line and cannot move the cursor.
# Arguments: value
# Outputs:   the cleaned value on stdout, without a new line
util_printable() {
  printf '%s' "${1//[![:print:]]/?}"
}

# Whether a process has ended: no such PID, or a zombie (ended, not yet reaped).
# Arguments: pid
# Returns:   0 when it is gone, 1 while it runs
util_pid_gone() {
  kill -0 "$1" 2>/dev/null || return 0
  local stat=""
  # it may end between the two checks (the next call sees it), or there is no /proc:
  # either way kill -0 just found it, so it counts as running
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" == [ZX] ]]
}

# Run `python3 -m <module> args…` (a module of APP_ROOT: pyhelpers.gpu, src.config) under
# `timeout`, so that only APP_ROOT decides which code runs: `python3 -m` puts its working
# directory first on sys.path, so it runs from APP_ROOT, with APP_ROOT first on PYTHONPATH
# too (a pyhelpers/ or src/ in the caller's directory or on the caller's PYTHONPATH is never
# run). A path among the arguments, or a relative one in a setting, is taken from APP_ROOT
# (the images' working directory).
# Globals:   APP_ROOT, PYTHONPATH (read)
# Arguments: seconds module [args…]
# Outputs:   the module's stdout and stderr
# Returns:   the module's status (124 or 137 when it ran out of time)
util_run_python() {
  local root
  root="$(util_app_root)"
  (cd "${root}" && PYTHONPATH="${PWD}${PYTHONPATH:+:${PYTHONPATH}}" \
    timeout -k 2 "$1" python3 -m "$2" "${@:3}")
}
