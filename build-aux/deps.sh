# Sourced by build-aux scripts: installs missing Debian packages.
# Usage: kv_ensure_packages PACKAGE...
kv_ensure_packages () {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0

  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "Installing: ${missing[*]}" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

KV_BUILD_PACKAGES=(meson ninja-build pkg-config gcc libc6-dev gettext
                   libglib2.0-dev libglib2.0-bin libsoup-3.0-dev libjson-glib-dev)
