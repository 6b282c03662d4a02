# shellcheck shell=bash
# Make a local Debian base image without a registry: debootstrap a minimal bookworm from
# the mirror the host's apt already uses, then `docker import` it.
#
# The root file system is cached as a tarball (named after the suite and the package
# list), so only the first run pays for debootstrap (minutes); the import is skipped
# when the image already exists. The image has /usr/bin/python3 (with venv), curl,
# ca-certificates and tini (/usr/bin/tini), CMD /bin/bash, LANG C.UTF-8.
#
# Configuration:
#   BASE_IMAGE_NAME    the image to make (default tid-base:bookworm)
#   BASE_IMAGE_SUITE   the Debian suite (default bookworm)
#   BASE_IMAGE_MIRROR  the Debian mirror (default: the host's apt source for the suite)
#   BASE_IMAGE_CACHE   where tarballs are kept (default <repo>/.cache/base-image)
# Needs an engine: source docker_engine.sh and call docker_engine_up first.
#
# A library: functions and constants only, no options set, safe under `set -u`.

_BASE_IMAGE_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/docker_engine.sh
source "${_BASE_IMAGE_LIB_DIR}/docker_engine.sh"

# Packages added to debootstrap's minbase.
BASE_IMAGE_PACKAGES=(python3 python3-venv ca-certificates curl tini)

# Print the Debian mirror that the host's apt sources use for a suite.
# Reads one-line (`deb [opts] URI SUITE …`) and deb822 (`Types:/URIs:/Suites:`) entries.
# Globals:   BASE_IMAGE_SUITE (read)
# Arguments: [sources file…] (default: /etc/apt/sources.list, /etc/apt/sources.list.d/*)
# Outputs:   the first matching URI on stdout
# Returns:   0 when found, 1 with a message naming the files read otherwise
# shellcheck disable=SC2120 # the files are optional: tests and callers with other sources pass them
base_image_mirror() {
  local suite="${BASE_IMAGE_SUITE:-bookworm}" files=("$@") f
  if ((${#files[@]} == 0)); then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
      [[ -r "${f}" ]] && files+=("${f}")
    done
  fi
  local uri=""
  ((${#files[@]} == 0)) || uri="$(awk -v suite="${suite}" '
    function has(list, word,   n, i, a) { n = split(list, a, /[ \t]+/); for (i = 1; i <= n; i++) if (a[i] == word) return 1; return 0 }
    function flush() { if (types_ok && enabled && has(suites, suite) && uris != "") { split(uris, u, /[ \t]+/); print u[1]; found = 1; exit } types_ok = 0; suites = ""; uris = ""; enabled = 1 }
    FNR == 1 { flush() }
    /^[ \t]*#/ { next }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if (tolower($1) == "types:") { types_ok = has(substr($0, index($0, ":") + 1), "deb") }
      else if (tolower($1) == "uris:") { uris = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", uris) }
      else if (tolower($1) == "suites:") { suites = substr($0, index($0, ":") + 1) }
      else if (tolower($1) == "enabled:") { enabled = (tolower($2) != "no") }
      next
    }
    $1 == "deb" {
      line = $0; sub(/^[ \t]*deb[ \t]+/, "", line); sub(/^\[[^]]*\][ \t]*/, "", line)
      split(line, w, /[ \t]+/); if (w[2] == suite) { print w[1]; found = 1; exit }
    }
    BEGIN { enabled = 1 }
    END { if (!found) flush() }
  ' "${files[@]}")"
  if [[ -z "${uri}" ]]; then
    log_err "[base]" "no apt source for suite '${suite}' in: ${files[*]:-(no readable apt sources)}; set BASE_IMAGE_MIRROR (example: BASE_IMAGE_MIRROR=http://<mirror>/debian)"
    return 1
  fi
  printf '%s\n' "${uri}"
}

# Make the base image unless it exists: debootstrap (or the cached tarball), then import.
# Globals:   BASE_IMAGE_NAME, BASE_IMAGE_SUITE, BASE_IMAGE_MIRROR, BASE_IMAGE_CACHE,
#            BASE_IMAGE_PACKAGES, DOCKER (read)
# Outputs:   the image name on stdout; progress with timings on stderr
# Returns:   0 when the image exists; 1 when a step failed; 127 when debootstrap cannot be installed
base_image_ensure() {
  local image="${BASE_IMAGE_NAME:-tid-base:bookworm}"
  if timeout 30 "${DOCKER:-docker}" image inspect "${image}" >/dev/null 2>&1; then
    log_info "[base]" "image ${image} exists; nothing to do"
    printf '%s\n' "${image}"
    return 0
  fi
  local tarball
  tarball="$(base_image_tarball)" || return
  local start="${SECONDS}"
  log_info "[base]" "importing ${tarball##*/} as ${image}"
  local changes=(--change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8')
  if ! timeout 600 "${DOCKER:-docker}" import "${changes[@]}" "${tarball}" "${image}" >/dev/null; then
    log_err "[base]" "docker import of ${tarball} failed; delete the tarball to make it anew"
    return 1
  fi
  log_success "[base]" "image ${image} imported in $((SECONDS - start))s"
  printf '%s\n' "${image}"
}

# Make (or find) the cached root file system tarball for the suite and package list.
# Globals:   BASE_IMAGE_SUITE, BASE_IMAGE_MIRROR, BASE_IMAGE_CACHE, BASE_IMAGE_PACKAGES (read)
# Outputs:   the tarball's path on stdout; progress with timings on stderr
# Returns:   0 when it exists; 1 when debootstrap or tar failed; 127 when debootstrap is missing
base_image_tarball() {
  local suite="${BASE_IMAGE_SUITE:-bookworm}" cache key
  cache="${BASE_IMAGE_CACHE:-$(cd "${_BASE_IMAGE_LIB_DIR}/../.." && pwd)/.cache/base-image}"
  key="$(printf '%s ' "${suite}" "${BASE_IMAGE_PACKAGES[@]}" | sha256sum)"
  local tarball="${cache}/${suite}-minbase-${key:0:8}.tar"
  mkdir -p "${cache}" || return 1
  local status=0
  {
    flock -w 1800 9 || true # a stuck holder only costs a second debootstrap
    [[ -s "${tarball}" ]] || _base_image_debootstrap "${suite}" "${tarball}" || status=$?
  } 9>"${cache}/lock"
  ((status == 0)) || return "${status}"
  log_debug "[base]" "tarball ${tarball}"
  printf '%s\n' "${tarball}"
}

# Run debootstrap into a temp dir next to the tarball, then pack it (without /dev, /proc, /sys
# contents, apt lists and downloaded .debs).
# Arguments: suite tarball
# Returns:   0 when the tarball is written; 1 on failure (debootstrap's log tail shown); 127
#            when debootstrap cannot be installed
_base_image_debootstrap() {
  local suite="$1" tarball="$2" mirror="${BASE_IMAGE_MIRROR:-}"
  [[ -n "${mirror}" ]] || mirror="$(base_image_mirror)" || return 1
  type -P debootstrap >/dev/null || docker_engine_apt_install debootstrap || return
  local root log include
  root="$(mktemp -d "${tarball%/*}/rootfs.XXXXXX")" || return 1
  log="${root}.log"
  include="$(IFS=,; printf '%s' "${BASE_IMAGE_PACKAGES[*]}")"
  local start="${SECONDS}" status=0
  log_info "[base]" "debootstrap ${suite} (minbase + ${include}) from ${mirror}: takes minutes"
  timeout 1800 debootstrap --variant=minbase --include="${include}" "${suite}" "${root}" "${mirror}" \
    >"${log}" 2>&1 || status=$?
  if ((status != 0)); then
    log_err "[base]" "debootstrap failed (status ${status}) after $((SECONDS - start))s; last lines of its log:"
    tail -n 5 "${log}" >&2
  else
    log_info "[base]" "debootstrap done in $((SECONDS - start))s; packing"
    rm -rf "${root}/var/lib/apt/lists/"* "${root}/var/cache/apt/"*.bin "${root}/var/cache/apt/archives/"*.deb
    if timeout 600 tar -C "${root}" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' \
      --exclude='./sys/*' -cf "${tarball}.part" .; then
      mv "${tarball}.part" "${tarball}"
    else
      status=1
    fi
  fi
  _base_image_remove_root "${root}"
  rm -f "${log}" "${tarball}.part"
  ((status == 0)) || return 1
  log_success "[base]" "tarball ${tarball##*/}: $(du -m "${tarball}" | cut -f1) MiB, made in $((SECONDS - start))s"
}

# Remove a debootstrap target, first unmounting anything debootstrap left mounted in it.
# Arguments: root directory
_base_image_remove_root() {
  local root="$1" mnt
  while IFS= read -r mnt; do
    umount -l "${mnt}" 2>/dev/null || true # best effort; rm below stays on this file system
  done < <(awk -v r="${root}/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "${root}"
}
