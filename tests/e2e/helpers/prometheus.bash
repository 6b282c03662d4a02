# shellcheck shell=bash
# A real Prometheus server for the e2e suites: Debian's `prometheus` package, started on
# 127.0.0.1 with a generated configuration that scrapes the given targets' /metrics every
# second, and PromQL queries over its HTTP API. Load it after helpers/e2e; call prom_stop from
# teardown (or the test itself).

# Install prometheus (and jq, which reads the API's answers) when missing, write a
# configuration scraping the targets, start the server on a free port, wait until it is ready.
# Globals:   PROM_URL, PROM_PID (set; PROM_PID also in $BATS_TEST_TMPDIR/prometheus/pid)
# Arguments: target (host:port)...
# Returns:   1 with the server's log when it is not ready within 60 s; 127 when the packages
#            cannot be installed
prom_start() {
  docker_engine_apt_install prometheus jq || return
  local dir="${BATS_TEST_TMPDIR}/prometheus" port targets
  mkdir -p "${dir}/data"
  targets="$(printf '"%s", ' "$@")"
  cat >"${dir}/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: text-inference
    metrics_path: /metrics
    static_configs:
      - targets: [${targets%, }]
EOF
  port="$(container_free_port)"
  # the time limit is a last resort: prom_stop ends it long before
  timeout 1800 prometheus --config.file="${dir}/prometheus.yml" --storage.tsdb.path="${dir}/data" \
    --web.listen-address="127.0.0.1:${port}" >"${dir}/log" 2>&1 3>&- &
  PROM_PID=$!
  printf '%s\n' "${PROM_PID}" >"${dir}/pid"
  PROM_URL="http://127.0.0.1:${port}"
  local deadline=$((SECONDS + 60))
  until curl -sf -m 2 -o /dev/null "${PROM_URL}/-/ready"; do
    if ((SECONDS >= deadline)) || ! kill -0 "${PROM_PID}" 2>/dev/null; then
      log_err "[prometheus]" "not ready at ${PROM_URL} within 60 s; its log:"
      tail -n 20 "${dir}/log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Stop the server prom_start started in this test (nothing when none is running).
prom_stop() {
  local pid
  pid="$(cat "${BATS_TEST_TMPDIR}/prometheus/pid" 2>/dev/null)" || return 0
  kill -TERM "${pid}" 2>/dev/null || return 0 # it has ended already
  wait_until_gone 30 "${pid}" || kill -KILL "${pid}" 2>/dev/null || true # gone meanwhile
}

# Wait until a process is gone.
# Arguments: seconds pid
# Returns:   1 when it still runs at the deadline
wait_until_gone() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$2" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Print the value of a PromQL query that has one result, evaluated once every target has been
# scraped after the given moment (so that the scrape saw what the test did before it).
# Globals:   PROM_URL (read)
# Arguments: epoch_seconds query
# Outputs:   the value (e.g. 3), or a message on stderr
# Returns:   1 when no scrape came after the moment within 30 s, or the query has not one result
prom_query_after() {
  local after="$1" query="$2" deadline=$((SECONDS + 30)) oldest answer
  while true; do
    oldest="$(_prom_query 'min(timestamp(up{job="text-inference"}))')" || oldest=0
    awk -v a="${oldest}" -v b="${after}" 'BEGIN { exit !(a > b) }' && break
    if ((SECONDS >= deadline)); then
      log_err "[prometheus]" "no scrape after ${after} within 30 s (the oldest of the last ones: ${oldest})"
      return 1
    fi
    sleep 0.2
  done
  answer="$(_prom_query "${query}")" || {
    log_err "[prometheus]" "${query}: not one result"
    return 1
  }
  printf '%s\n' "${answer}"
}

# Print the value of an instant query with one result.
# Returns:   1 when it has none or several (or Prometheus does not answer)
_prom_query() {
  curl -sf -m 10 --get --data-urlencode "query=$1" "${PROM_URL}/api/v1/query" |
    jq -r 'if (.data.result | length) == 1 then .data.result[0].value[1] else empty end' |
    grep .
}
