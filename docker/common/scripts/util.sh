# shellcheck shell=bash
# Small helpers more than one runtime library needs, kept in one place:
#   util_app_root          where the runtime finds src/, pyhelpers/, scripts/ (APP_ROOT)
#   util_trim NAME         strip the blanks around a variable's value, in place
#   util_printable VALUE   a value with control characters shown as '?' (for one-line messages)
#   util_pid_gone PID      whether a process has ended (a zombie counts as ended)
#
# A library: functions only, no options set, safe under `set -u`; sourcing it
# again is harmless. None of them starts a program except util_app_root when
# APP_ROOT is unset (one `cd`/`pwd` subshell).

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
