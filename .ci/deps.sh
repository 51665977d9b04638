#!/usr/bin/env bash
# Installs the Debian packages tickwire needs, only those missing. Sourced by
# the demo, the test runner and CI; uses sudo when not run as root.
set -euo pipefail

TW_PACKAGES=(
    build-essential cmake pkg-config
    libenet-dev libcjson-dev libsodium-dev libcmocka-dev
    libsqlite3-dev libmicrohttpd-dev libcurl4-openssl-dev
    clang libclang-rt-14-dev valgrind
    python3 python3-enet gnuplot-nox prometheus curl iproute2 procps
    faketime
)

tw_install_deps() {
    local missing=()
    for pkg in "${TW_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0

    echo "tickwire: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}
