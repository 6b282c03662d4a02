# shellcheck shell=bash
# A local Hugging Face Hub for the demo, the e2e suite and the benchmarks: a tiny
# random-weight tool model (scripts/lib/tiny_model.py) or chat model (tiny_chat_model.py)
# published as a git repository (scripts/lib/hub_mirror.py publish) and served by Olah
# (hub_mirror.py serve) on 127.0.0.1.
#
# Configuration:
#   HUB_FIXTURE_PYTHON   the Python with torch, transformers and olah (default <repo>/.venv/bin/python)
#   HUB_FIXTURE_TIMEOUT  seconds to wait for the mirror to answer or stop (default 60)
# Set by hub_fixture_start: HUB_FIXTURE_PID (the serve process), HUB_FIXTURE_URL (use as HF_ENDPOINT).
#
# A library: functions and constants only, no options set, safe under `set -u`.

_HUB_FIXTURE_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker/common/scripts/logs.sh
source "${_HUB_FIXTURE_LIB_DIR}/../../docker/common/scripts/logs.sh"

# Print the Python that runs the fixture's helpers.
# Globals:   HUB_FIXTURE_PYTHON (read)
_hub_fixture_python() {
  printf '%s\n' "${HUB_FIXTURE_PYTHON:-$(cd "${_HUB_FIXTURE_LIB_DIR}/../.." && pwd)/.venv/bin/python}"
}

# Make a tiny tool model and publish it into a mirrors directory, tagged when a tag is given.
# Arguments: mirrors_dir repo_id [tag] [seed]
# Outputs:   the commit sha on stdout
# Returns:   0 on success; 1 with the helper's message otherwise
hub_fixture_publish_tiny() {
  _hub_fixture_publish tiny_model.py classifier "$@"
}

# Make a tiny chat model (a Llama that vLLM serves) and publish it, as hub_fixture_publish_tiny.
# Arguments: mirrors_dir repo_id [tag] [seed]
# Outputs:   the commit sha on stdout
# Returns:   0 on success; 1 with the helper's message otherwise
hub_fixture_publish_tiny_chat() {
  _hub_fixture_publish tiny_chat_model.py "chat model" "$@"
}

# Make a model with one of the tiny-model scripts and publish it.
# Arguments: maker (a script next to this file) what mirrors_dir repo_id [tag] [seed]
_hub_fixture_publish() {
  local maker="$1" what="$2" mirrors="$3" repo="$4" tag="${5:-}" seed="${6:-0}" py model sha status=0
  py="$(_hub_fixture_python)"
  model="$(mktemp -d "${TMPDIR:-/tmp}/tiny-model.XXXXXX")" || return 1
  if ! HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error timeout 300 "${py}" \
    "${_HUB_FIXTURE_LIB_DIR}/${maker}" "${model}" --seed "${seed}" >/dev/null; then
    log_err "[hub]" "could not make the tiny ${what} with ${py} (needs torch and transformers: scripts/test.sh installs them into .venv)"
    rm -rf "${model}"
    return 1
  fi
  local args=(publish --mirrors "${mirrors}" --repo "${repo}" --from "${model}")
  [[ -z "${tag}" ]] || args+=(--tag "${tag}")
  sha="$(timeout 300 "${py}" "${_HUB_FIXTURE_LIB_DIR}/hub_mirror.py" "${args[@]}")" || status=1
  rm -rf "${model}"
  ((status == 0)) || return 1
  log_info "[hub]" "published a tiny ${what} as ${repo}${tag:+ (tag ${tag})} at ${sha:0:12}"
  printf '%s\n' "${sha}"
}

# Start Olah over a mirrors directory in the background and wait until it answers.
# Globals:   HUB_FIXTURE_PID, HUB_FIXTURE_URL (written); HUB_FIXTURE_TIMEOUT (read)
# Arguments: mirrors_dir
# Outputs:   progress on stderr
# Returns:   0 when it answers; 1 (the server stopped, its log shown) otherwise
hub_fixture_start() {
  local mirrors="$1" py out deadline
  py="$(_hub_fixture_python)"
  out="${mirrors}/.serve.out"
  : >"${out}"
  # fd 3 closed: a bats suite would otherwise wait for the server to end
  "${py}" "${_HUB_FIXTURE_LIB_DIR}/hub_mirror.py" serve --mirrors "${mirrors}" --host 127.0.0.1 \
    >"${out}" 2>"${out}.err" </dev/null 3>&- &
  HUB_FIXTURE_PID=$!
  HUB_FIXTURE_URL=""
  deadline=$((SECONDS + ${HUB_FIXTURE_TIMEOUT:-60}))
  until [[ -n "${HUB_FIXTURE_URL}" ]]; do
    if ! kill -0 "${HUB_FIXTURE_PID}" 2>/dev/null || ((SECONDS >= deadline)); then
      log_err "[hub]" "the Olah mirror did not answer within ${HUB_FIXTURE_TIMEOUT:-60}s (HUB_FIXTURE_TIMEOUT); its last lines:"
      tail -n 5 "${out}.err" >&2
      hub_fixture_stop
      return 1
    fi
    sleep 0.2
    HUB_FIXTURE_URL="$(head -n 1 "${out}")"
  done
  log_info "[hub]" "Olah mirror at ${HUB_FIXTURE_URL} (pid ${HUB_FIXTURE_PID})"
}

# Stop the mirror started by hub_fixture_start (TERM, then KILL at the deadline). Idempotent.
# Globals:   HUB_FIXTURE_PID (read, then cleared), HUB_FIXTURE_TIMEOUT (read)
# Returns:   0
hub_fixture_stop() {
  local pid="${HUB_FIXTURE_PID:-}" deadline
  HUB_FIXTURE_PID=""
  [[ -n "${pid}" ]] || return 0
  kill -TERM "${pid}" 2>/dev/null || true # it may have ended already
  deadline=$((SECONDS + ${HUB_FIXTURE_TIMEOUT:-60}))
  while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "${pid}" 2>/dev/null || true # only when TERM was not enough
  wait "${pid}" 2>/dev/null || true # its status does not matter once it is gone
  return 0
}
