#!/usr/bin/env bats
# scripts/lib/docker_engine.sh and scripts/lib/base_image.sh on a real Docker engine:
# start or reuse the engine, make or reuse the debootstrap base image, build a tiny image
# with BuildKit secrets and pip behind the host CA bundle, run it, check that no secret
# reached the image, stop the engine. The engine tests skip, with the reason, only when
# no engine can be started at all.
# Each test runs in its own subshell, so changes to globals are meant to be local:
# shellcheck disable=SC2030,SC2031

load '../bats/helpers/common'

HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

setup_file() {
  # shellcheck source=scripts/lib/base_image.sh
  source "${PROJECT_ROOT}/scripts/lib/base_image.sh"
  local log="${BATS_FILE_TMPDIR}/engine-up.log"
  if ! docker_engine_up 2>"${log}"; then
    E2E_NO_ENGINE="no Docker engine could be started: $(tail -n 3 "${log}" | tr '\n' ' ')"
    export E2E_NO_ENGINE
    return 0
  fi
  E2E_BASE_IMAGE="$(base_image_ensure)"
  E2E_IMAGE="tid-e2e-engine:bats-$$"
  E2E_HF_TOKEN="hf_e2e_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  E2E_RUN_ID="${$}-${RANDOM}"
  export E2E_BASE_IMAGE E2E_IMAGE E2E_HF_TOKEN E2E_RUN_ID
}

teardown_file() {
  [[ -z "${E2E_NO_ENGINE:-}" ]] || return 0
  timeout 60 "${DOCKER}" rm -f "$(cat "${BATS_FILE_TMPDIR}/cid" 2>/dev/null)" >/dev/null 2>&1 ||
    true # no container was left by the tests
  timeout 60 "${DOCKER}" image rm -f "${E2E_IMAGE}" >/dev/null 2>&1 || true # not built when a test failed early
  # shellcheck source=scripts/lib/docker_engine.sh
  source "${PROJECT_ROOT}/scripts/lib/docker_engine.sh"
  docker_engine_stop
}

setup() {
  common_setup
  set -u
  # shellcheck source=scripts/lib/base_image.sh
  source "${PROJECT_ROOT}/scripts/lib/base_image.sh"
}

teardown() {
  [[ -n "${TEST_RUN_DIR:-}" ]] || return 0
  _docker_engine_kill "${TEST_RUN_DIR}" 2>/dev/null # a test's own engine, when it failed midway
}

# Skip the test when setup_file could not start any engine.
need_engine() {
  [[ -z "${E2E_NO_ENGINE:-}" ]] || skip "${E2E_NO_ENGINE}"
}

# Build the tiny test image (cached by BuildKit after the first test that builds it).
# The hf_token secret comes from the environment, the CA bundle from the host's file.
# A new secret value does not invalidate BuildKit's cache, so RUN_ID (not secret) does.
build_test_image() {
  local ctx="${BATS_FILE_TMPDIR}/ctx"
  mkdir -p "${ctx}"
  cat >"${ctx}/Dockerfile" <<DOCKERFILE
FROM ${E2E_BASE_IMAGE}
ARG RUN_ID
RUN --mount=type=secret,id=hf_token,required=false \\
    echo "\${RUN_ID}" >/run_id; if [ -s /run/secrets/hf_token ]; then sha256sum </run/secrets/hf_token | cut -c1-16; else echo none; fi >/token.sha
RUN --mount=type=secret,id=ca_bundle \\
    python3 -m venv /opt/venv \\
 && PIP_CERT=/run/secrets/ca_bundle /opt/venv/bin/pip install -q --disable-pip-version-check six==1.17.0
HEALTHCHECK --interval=1s --timeout=5s --retries=3 CMD ["/opt/venv/bin/python", "-c", "import six"]
CMD ["/opt/venv/bin/python", "-c", "import six; print('six', six.__version__, 'token', open('/token.sha').read().strip())"]
DOCKERFILE
  HF_TOKEN="${E2E_HF_TOKEN}" timeout 300 "${DOCKER}" build --progress plain --network host \
    --secret id=hf_token,env=HF_TOKEN --secret "id=ca_bundle,src=${HOST_CA_BUNDLE}" \
    --build-arg "RUN_ID=${E2E_RUN_ID}" -t "${E2E_IMAGE}" "${ctx}"
}

@test "client choice: a docker that refuses BuildKit without buildx is passed over for Debian's" {
  [[ -x /usr/bin/docker ]] || skip "Debian's docker client /usr/bin/docker is not installed (no engine either)"
  export DOCKER_ENGINE_RUN_DIR="${BATS_TEST_TMPDIR}/run"
  make_stub docker 'echo "ERROR: BuildKit is enabled but the buildx component is missing or broken." >&2; exit 1'
  _docker_engine_pick_client
  assert_equal "${DOCKER}" /usr/bin/docker
  assert_equal "${DOCKER_BUILDKIT}" 1
  assert_equal "$(readlink "$(type -P docker)")" /usr/bin/docker
  assert_equal "$(cat "${STUB_DIR}/docker.calls")" "build --help"
}

@test "client choice: a docker that builds with BuildKit is kept and PATH is left alone" {
  make_stub docker
  local before="${PATH}"
  _docker_engine_pick_client
  assert_equal "${DOCKER}" "${STUB_DIR}/docker"
  assert_equal "${PATH}" "${before}"
}

@test "DOCKER_ENGINE_TIMEOUT=soon: one line naming it, status 1, no docker or dockerd run" {
  make_stub docker
  make_stub dockerd
  DOCKER_ENGINE_TIMEOUT=soon run --separate-stderr docker_engine_up
  assert_failure 1
  assert_equal "${stderr}" "[engine] ✗ DOCKER_ENGINE_TIMEOUT 'soon' is not valid; use a whole number of seconds above 0 (default 60)"
  assert_equal "$(stub_call_count docker)" 0
  assert_equal "$(stub_call_count dockerd)" 0
}

@test "a dockerd that dies at start: status 1 with its log's last lines, no socket, nothing running" {
  [[ -x /usr/bin/docker ]] || skip "Debian's docker client /usr/bin/docker is not installed (no engine either)"
  export DOCKER_ENGINE_RUN_DIR="${BATS_TEST_TMPDIR}/run" DOCKER_ENGINE_DATA_ROOT="${BATS_TEST_TMPDIR}/data"
  unset DOCKER_HOST
  _docker_engine_answers unix:///var/run/docker.sock && skip "the default socket answers, so no private engine starts"
  make_stub dockerd 'echo "failed to start daemon: boom" >&2; exit 1'
  run --separate-stderr docker_engine_up
  assert_failure 1
  [[ "${stderr}" == *"[engine] ✗ dockerd did not answer within 60s (DOCKER_ENGINE_TIMEOUT); last lines of ${DOCKER_ENGINE_RUN_DIR}/dockerd.log:"*"failed to start daemon: boom"* ]]
  assert_equal "$(stub_call_count dockerd)" 1
  [[ "$(cat "${STUB_DIR}/dockerd.calls")" == *"--bridge=none --iptables=false --ip6tables=false"* ]]
  [[ ! -e "${DOCKER_ENGINE_RUN_DIR}/docker.sock" && ! -e "${DOCKER_ENGINE_RUN_DIR}/leases" ]]
}

@test "mirror: deb822 and one-line sources; disabled entries and other suites are passed over" {
  local dir="${BATS_TEST_TMPDIR}/apt sources"
  mkdir -p "${dir}"
  cat >"${dir}/a.sources" <<'SOURCES'
# a comment
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb-src deb
URIs: http://security.example/debian-security
Suites: bookworm-security

Types: deb deb-src
URIs: http://main.example/debian http://second.example/debian
Suites: bookworm bookworm-updates
Components: main
SOURCES
  run -0 base_image_mirror "${dir}/a.sources"
  assert_output http://main.example/debian
  printf '%s\n' '# deb http://commented.example/debian bookworm main' \
    'deb-src http://src.example/debian bookworm main' \
    'deb [arch=amd64 signed-by=/k.gpg] http://line.example/debian bookworm main' >"${dir}/b.list"
  run -0 base_image_mirror "${dir}/b.list" "${dir}/a.sources"
  assert_output http://line.example/debian
}

@test "mirror: no source for the suite names the suite, the files and the fix, status 1" {
  local file="${BATS_TEST_TMPDIR}/only.list"
  printf 'deb http://x.example/debian bookworm main\n' >"${file}"
  BASE_IMAGE_SUITE=trixie run --separate-stderr base_image_mirror "${file}"
  assert_failure 1
  assert_equal "${output}" ""
  assert_equal "${stderr}" "[base] ✗ no apt source for suite 'trixie' in: ${file}; set BASE_IMAGE_MIRROR (example: BASE_IMAGE_MIRROR=http://<mirror>/debian)"
}

@test "engine: answers at DOCKER_HOST; a private one has no bridge network and a short socket path" {
  need_engine
  run -0 timeout 30 "${DOCKER}" info --format '{{.ServerVersion}}'
  [[ "${DOCKER_ENGINE_PRIVATE:-}" == 1 ]] || skip "the engine is not the private one (${DOCKER_HOST})"
  local socket="${DOCKER_HOST#unix://}"
  [[ -S "${socket}" ]]
  ((${#socket} < 100))
  run -0 timeout 30 "${DOCKER}" network ls --format '{{.Name}}'
  refute_line bridge
  assert_line host
}

@test "engine: a second process reuses the running engine and does not stop it" {
  need_engine
  local lib="${PROJECT_ROOT}/scripts/lib/docker_engine.sh"
  run --separate-stderr bash -c "source '${lib}'; docker_engine_up && docker_engine_stop"
  assert_success
  assert_equal "${stderr}" "[engine] using the running engine at ${DOCKER_HOST}"
  [[ "${DOCKER_ENGINE_PRIVATE:-}" == 1 ]] || return 0
  # without DOCKER_HOST it finds the private engine by its socket and holds it while it runs
  run -0 env -u DOCKER_HOST bash -c "source '${lib}'; docker_engine_up && docker_engine_stop"
  assert_line --index 0 "[engine] reusing the private engine at ${DOCKER_HOST}"
  assert_line --index 1 --partial "[engine] leaving the private engine running: still used by pid"
  run -0 timeout 30 "${DOCKER}" info --format '{{.ServerVersion}}'
}

@test "base image: made once, then reused; python3, venv, curl, CA certificates and tini inside" {
  need_engine
  run --separate-stderr base_image_ensure
  assert_success
  assert_output "${E2E_BASE_IMAGE}"
  assert_equal "${stderr}" "[base] image ${E2E_BASE_IMAGE} exists; nothing to do"
  # shellcheck disable=SC2016 # expanded by the container's shell
  run -0 timeout 60 "${DOCKER}" run --rm --network host "${E2E_BASE_IMAGE}" \
    sh -c 'for p in python3 tini curl; do command -v "$p"; done; python3 -c "import ensurepip, venv, ssl; print(ssl.OPENSSL_VERSION)"; test -s /etc/ssl/certs/ca-certificates.crt && echo certs'
  assert_line --index 0 /usr/bin/python3
  assert_line --index 1 /usr/bin/tini
  assert_line --index 2 /usr/bin/curl
  assert_line --index 3 --partial OpenSSL
  assert_line --index 4 certs
}

@test "build: secrets without a syntax line, pip through the CA secret; no secret in the image" {
  need_engine
  run -0 build_test_image
  refute_output --partial "${E2E_HF_TOKEN}"
  run -0 timeout 60 "${DOCKER}" run --rm --network host "${E2E_IMAGE}"
  local sha
  sha="$(printf '%s' "${E2E_HF_TOKEN}" | sha256sum | cut -c1-16)"
  assert_output "six 1.17.0 token ${sha}"
  # nowhere in history, config or layers, and the secret mounts left nothing behind
  run -0 timeout 60 "${DOCKER}" history --no-trunc "${E2E_IMAGE}"
  refute_output --partial "${E2E_HF_TOKEN}"
  run -0 timeout 60 "${DOCKER}" inspect "${E2E_IMAGE}"
  refute_output --partial "${E2E_HF_TOKEN}"
  local saved="${BATS_TEST_TMPDIR}/image.tar"
  timeout 120 "${DOCKER}" save -o "${saved}" "${E2E_IMAGE}"
  (($(stat -c %s "${saved}") > 1000000))
  run ! grep -qaF "${E2E_HF_TOKEN}" "${saved}"
  run -0 timeout 60 "${DOCKER}" run --rm "${E2E_IMAGE}" sh -c 'ls -A /run/secrets; cat /etc/ssl/certs/ca-certificates.crt'
  refute_line ca_bundle
  refute_line hf_token
  # a certificate line only the host's bundle has (the intercepting proxy's CA) is in no layer
  local host_only
  host_only="$(grep -vxF -f <(printf '%s\n' "${output}") "${HOST_CA_BUNDLE}" | grep -E '^[A-Za-z0-9+/]{64}$' | head -n 1)" ||
    true # no extra CA on this host: nothing more to look for
  [[ -z "${host_only}" ]] || run ! grep -qaF "${host_only}" "${saved}"
}

@test "run: the Dockerfile's HEALTHCHECK turns healthy; --network host reaches the host's 127.0.0.1" {
  need_engine
  build_test_image >/dev/null 2>&1
  local port
  port="$("${VENV_PYTHON}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  local cid
  cid="$(timeout 60 "${DOCKER}" run -d --network host "${E2E_IMAGE}" \
    /opt/venv/bin/python -m http.server "${port}" --bind 127.0.0.1)"
  printf '%s\n' "${cid}" >"${BATS_FILE_TMPDIR}/cid"
  local status="" deadline=$((SECONDS + 30))
  until [[ "${status}" == healthy ]] || ((SECONDS >= deadline)); do
    sleep 0.5
    status="$(timeout 30 "${DOCKER}" inspect -f '{{.State.Health.Status}}' "${cid}")"
  done
  assert_equal "${status}" healthy
  run -0 curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port}/"
  assert_output 200
  run -0 timeout 60 "${DOCKER}" rm -f "${cid}"
  run -0 timeout 30 "${DOCKER}" ps -aq --filter "id=${cid}"
  assert_output ""
}

@test "stop: the engine stops when its last user leaves, and nothing is left running" {
  need_engine
  local lib="${PROJECT_ROOT}/scripts/lib/docker_engine.sh"
  export TEST_RUN_DIR="${BATS_TEST_TMPDIR}/r"
  local -x DOCKER_ENGINE_RUN_DIR="${TEST_RUN_DIR}" DOCKER_ENGINE_DATA_ROOT="${BATS_TEST_TMPDIR}/data root"
  # a private engine held by another live process (a lease named after its pid) keeps running
  timeout 30 sleep 30 3>&- &
  local holder=$!
  run -0 env -u DOCKER_HOST bash -c "source '${lib}'; docker_engine_up && touch '${TEST_RUN_DIR}/leases/${holder}' && docker_engine_stop"
  [[ "${output}" == *"still used by pid ${holder}"* ]]
  local pid containerd
  pid="$(cat "${TEST_RUN_DIR}/dockerd.pid")"
  containerd="$(cat "${TEST_RUN_DIR}/exec/containerd/containerd.pid")"
  kill -0 "${pid}"
  kill "${holder}"
  wait "${holder}" || true # killed on purpose
  run -0 env -u DOCKER_HOST bash -c "source '${lib}'; docker_engine_up && docker_engine_stop"
  assert_line --partial "reusing the private engine"
  assert_line --partial "stopping the private engine (pid ${pid})"
  run ! kill -0 "${pid}"
  run ! kill -0 "${containerd}"
  run pgrep -f -- "--data-root ${DOCKER_ENGINE_DATA_ROOT}"
  assert_failure 1
  [[ ! -e "${TEST_RUN_DIR}/docker.sock" && ! -e "${TEST_RUN_DIR}/leases/${holder}" ]]
}
