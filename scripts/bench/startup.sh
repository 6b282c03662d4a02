#!/usr/bin/env bash
# Usage:   scripts/bench/startup.sh [--help] [--runs N]
# Summary: Measure how late warmup.sh notices a server turning healthy. Each run
#          starts a real uvicorn serving tests/apps/probe.py:late, whose /healthz
#          answers 503 until a switch moment (0.5 s to 3.5 s after start, spread
#          over the runs) and 200 after it, and runs warmup.sh with its default
#          settings. The gap is the warmup's "ready at" time minus the switch
#          time the app recorded. Prints each gap, then the median and the
#          maximum over N runs (default 20). Target: max <= 0.5 s.
#          Needs the project's .venv (scripts/test.sh makes it) or a python3
#          with uvicorn, and takes about a minute.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly TARGET_S=0.5
# shellcheck source=docker/common/scripts/logs.sh
source "${ROOT}/docker/common/scripts/logs.sh"
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
  port="$("${PYTHON}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PROBE_DIR="${dir}" PROBE_READY_AFTER="$2" "${PYTHON}" -m uvicorn --app-dir "${ROOT}" \
    tests.apps.probe:late --host 127.0.0.1 --port "${port}" --log-level warning 2>"${dir}/server.log" &
  server=$!
  WARMUP_URL="http://127.0.0.1:${port}/healthz" timeout 60 \
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

main() {
  local runs=20
  while (($#)); do
    case "$1" in
      -h | --help) usage; return 0 ;;
      --runs)
        [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { log_err "--runs '${2:-}' is not valid; give a whole number of runs (default 20)"; return 64; }
        runs="$2"
        shift 2
        ;;
      *) log_err "unknown argument '$1'; use --runs N or --help"; return 64 ;;
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

  local i after gap gaps=()
  for ((i = 0; i < runs; i++)); do
    after="$(awk -v i="${i}" -v n="${runs}" 'BEGIN { printf "%.2f", 0.5 + (n > 1 ? 3 * i / (n - 1) : 0) }')"
    gap="$(run_once "$((i + 1))" "${after}")"
    log_info "run $((i + 1))/${runs}: healthy after ${after} s, reported ${gap} s later"
    gaps+=("${gap}")
  done
  printf '%s\n' "${gaps[@]}" | sort -g | awk -v target="${TARGET_S}" '
    { v[NR] = $1 }
    END {
      median = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "warmup lateness over %d runs: median %.3f s, max %.3f s (target: max <= %.1f s: %s)\n",
        NR, median, v[NR], target, (v[NR] <= target ? "met" : "MISSED")
    }'
}

main "$@"
