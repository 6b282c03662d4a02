#!/usr/bin/env bash
# Usage:   scripts/demo.sh
# Summary: Build the tool image through docker/build.sh, run it, classify a sentence, clean up.
#          Not ready yet: the end-to-end path is still being built.
set -Eeuo pipefail

main() {
  printf '%s\n' "[demo] ✗ not implemented yet: it will build the tool image with docker/build.sh (DEPLOY_MODE=tool)," \
    "[demo]   run it with a generated TEXT_API_KEY, wait for /healthz, send one /v1/classify request and clean up." >&2
  exit 1
}

main "$@"
