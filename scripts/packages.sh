# Sourced by deps.sh, iso.sh and plots.sh: collect the Debian packages a target is
# missing, then install them when root (or say which command to run).

missing_packages=()

need_command() { # command package
  command -v "$1" >/dev/null 2>&1 || missing_packages+=("$2")
}
need_package() { # package (no command to probe)
  dpkg -s "$1" >/dev/null 2>&1 || missing_packages+=("$1")
}

# install_missing WHO: installs what the need_* calls collected, as root with apt-get;
# otherwise prints the command to run, prefixed with WHO, and returns 1.
install_missing() {
  [ ${#missing_packages[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$1: installing ${missing_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >/dev/null
  else
    echo "$1: missing packages; run: sudo apt-get install -y ${missing_packages[*]}" >&2
    return 1
  fi
}
