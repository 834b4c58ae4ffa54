# Sourced by build-aux scripts: installs missing Debian packages and locales.
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

# Usage: kv_ensure_locale de_DE.UTF-8
# Generates the locale (Debian's locales package) unless it exists.
kv_ensure_locale () {
  local locale=$1
  # locale -a spells de_DE.UTF-8 as de_DE.utf8.
  local spelled
  spelled=$(echo "$locale" | sed 's/\.UTF-8$/.utf8/')
  locale -a 2>/dev/null | grep -qx "$spelled" && return 0

  kv_ensure_packages locales
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "Generating the $locale locale" >&2
  if grep -q "^# *$locale UTF-8" /etc/locale.gen; then
    "${sudo[@]}" sed -i "s/^# *\($locale UTF-8\)/\1/" /etc/locale.gen
  elif ! grep -q "^$locale UTF-8" /etc/locale.gen; then
    echo "$locale UTF-8" | "${sudo[@]}" tee -a /etc/locale.gen >/dev/null
  fi
  "${sudo[@]}" locale-gen
}

KV_BUILD_PACKAGES=(meson ninja-build pkg-config gcc libc6-dev gettext scdoc
                   libglib2.0-dev libglib2.0-bin libsoup-3.0-dev libjson-glib-dev)
