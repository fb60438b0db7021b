#!/usr/bin/env bash
# Install the system packages vigil needs to build, test and run its demo on Debian 12, plus
# any packages named as arguments (e.g. `make bench` adds the Python GStreamer bindings).
# Installs only what is missing; uses apt-get as root, or sudo when available; otherwise prints
# the command to run and fails.
set -euo pipefail

PACKAGES=(
  pkg-config
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  gstreamer1.0-tools
  mosquitto
  mosquitto-clients
  sqlite3
  openssl
  ca-certificates
  systemd
)
PACKAGES+=("$@")

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm run the AsyncAPI parser of `make contract`. Any node ≥ 18 will do (a
# NodeSource build ships npm inside its nodejs package; Debian splits them).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-deps: these Debian packages are missing: ${missing[*]}" >&2
    echo "install-deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The broker is started by the tests themselves on free ports; the packaged service is not
# needed (and on a developer machine it would hold port 1883).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  echo "install-deps: note: the system mosquitto service is running; the tests do not use it"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo is missing; install Rust 1.95 or newer (https://rustup.rs)" >&2
  exit 1
fi
echo "install-deps: system packages OK"
