#!/usr/bin/env bash
# Usage:   scripts/bench/startup.sh [--help] [--plan "SECONDSxRUNS ..."]
# Summary: Measure how late warmup.sh notices a server turning healthy. Each run
#          starts a real uvicorn serving tests/apps/probe.py:late, whose /healthz
#          answers 503 until a switch moment and 200 after it, and runs warmup.sh
#          with its default settings. The gap is the warmup's "ready at" time
#          minus the switch time the app recorded. The plan says how many runs
#          switch after how many seconds (default "0.5x8 2x6 8x4 30x2": 20 runs,
#          fewer for the long start-ups, whose pauses are the longest). Prints
#          each gap, the median and maximum per switch time, then over all
#          runs. Target: max <= 0.5 s at every switch time.
#          Needs the project's .venv (scripts/test.sh makes it) or a python3
#          with uvicorn, and takes about two and a half minutes.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly TARGET_S=0.5
readonly DEFAULT_PLAN="0.5x8 2x6 8x4 30x2"
# shellcheck source=docker/common/scripts/logs.sh
source "${ROOT}/docker/common/scripts/logs.sh"
# shellcheck source=tests/apps/harness.bash
source "${ROOT}/tests/apps/harness.bash" # harness_free_port
# shellcheck source=docker/common/scripts/settings.sh
source "${ROOT}/docker/common/scripts/settings.sh" # settings_resolve: warmup's defaults
LOG_PREFIX="[bench]"

WORK=""

# Print the Usage/Summary block at the top of this file.
usage() {
  log_usage "${BASH_SOURCE[0]}"
}

# Remove the work directory.
# Globals: WORK
cleanup() {
  [[ -z "${WORK}" ]] || rm -rf "${WORK}"
}

# One run: serve the late app, wait for it with warmup.sh, print the gap in seconds.
# Globals:   PYTHON, WORK (read)
# Arguments: run number, seconds until the app turns healthy
run_once() {
  local dir="${WORK}/run $1" port ready switch server status=0
  mkdir -p "${dir}"
  port="$(harness_free_port "${PYTHON}")"
  PROBE_DIR="${dir}" PROBE_READY_AFTER="$2" "${PYTHON}" -m uvicorn --app-dir "${ROOT}" \
    tests.apps.probe:late --host 127.0.0.1 --port "${port}" --log-level warning 2>"${dir}/server.log" &
  server=$!
  WARMUP_URL="http://127.0.0.1:${port}/healthz" timeout 120 \
    "${ROOT}/docker/common/scripts/warmup.sh" "${server}" 2>"${dir}/warmup.log" || status=$?
  kill -TERM "${server}" 2>/dev/null || true # it may have ended already
  wait "${server}" 2>/dev/null || true       # 143 after SIGTERM is expected
  if ((status != 0)); then
    log_err "run $1: warmup failed with status ${status}: $(tail -n 1 "${dir}/warmup.log")"
    return 1
  fi
  ready="$(sed -n 's/.*ready at epoch \([0-9.]*\).*/\1/p' "${dir}/warmup.log")"
  switch="$(<"${dir}/switch_at")"
  awk -v a="${ready}" -v b="${switch}" 'BEGIN { printf "%.3f\n", a - b }'
}

# Print "median max" of the numbers on stdin.
summarize() {
  sort -g | awk '{ v[NR] = $1 }
    END { printf "%.3f %.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[NR] }'
}

main() {
  local plan="${DEFAULT_PLAN}"
  while (($#)); do
    case "$1" in
      -h | --help) usage; return 0 ;;
      --plan)
        [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?x[1-9][0-9]*(\ +[0-9]+(\.[0-9]+)?x[1-9][0-9]*)*$ ]] ||
          { log_err "--plan '${2:-}' is not valid; give SECONDSxRUNS items, e.g. \"${DEFAULT_PLAN}\""; return 64; }
        plan="$2"
        shift 2
        ;;
      *) log_err "unknown argument '$1'; use --plan \"SECONDSxRUNS ...\" or --help"; return 64 ;;
    esac
  done
  PYTHON="${ROOT}/.venv/bin/python"
  [[ -x "${PYTHON}" ]] || PYTHON=python3
  if ! "${PYTHON}" -c 'import uvicorn' 2>/dev/null; then
    log_err "uvicorn is not installed for ${PYTHON}; run scripts/test.sh once to make .venv"
    return 127
  fi
  WORK="$(mktemp -d)"
  trap cleanup EXIT
  # warmup's settings as a container's bootstrap resolves them (the tool stack's defaults)
  DEPLOY_MODE=tool PATH="$(dirname "${PYTHON}"):${PATH}" APP_ROOT="${ROOT}" settings_resolve tool || return 1

  local item after runs i n=0 gap gaps all=() median max verdict="met"
  for item in ${plan}; do
    after="${item%x*}"
    runs="${item#*x}"
    gaps=()
    for ((i = 1; i <= runs; i++)); do
      n=$((n + 1))
      gap="$(run_once "${n}" "${after}")"
      log_info "switch after ${after} s, run ${i}/${runs}: reported ${gap} s late"
      gaps+=("${gap}")
    done
    all+=("${gaps[@]}")
    read -r median max < <(printf '%s\n' "${gaps[@]}" | summarize)
    awk -v m="${max}" -v t="${TARGET_S}" 'BEGIN { exit !(m > t) }' && verdict="MISSED"
    printf 'switch after %s s: %d runs, median %s s, max %s s\n' "${after}" "${runs}" "${median}" "${max}"
  done
  read -r median max < <(printf '%s\n' "${all[@]}" | summarize)
  printf 'warmup lateness over %d runs: median %s s, max %s s (target: max <= %s s: %s)\n' \
    "${#all[@]}" "${median}" "${max}" "${TARGET_S}" "${verdict}"
}

main "$@"
