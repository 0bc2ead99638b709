#!/usr/bin/env bash
# What a fresh Debian machine needs, installed with apt-get: one list per purpose, shared by
# scripts/demo.sh, scripts/test.sh, scripts/bench.sh, scripts/package.sh and .ci/run.
#
#   sudo scripts/setup.sh demo     # docker.io, minisign, a C compiler
#   sudo scripts/setup.sh test     # + zstd, pigz, time, skopeo, umoci, docker-registry, openssl,
#                                  #   podman (a private API service per podman test),
#                                  #   containerd and ctr (a private containerd per containerd
#                                  #   test; also a dependency of docker.io),
#                                  #   python3 with pip and PyPI's helm-python-sdk (renders Helm
#                                  #   charts for the chart tests; the tools never need Python),
#                                  #   chromium (renders the transfer report in its test)
#   sudo scripts/setup.sh bench    # the test list + debootstrap, python3
#   sudo scripts/setup.sh package  # a C compiler, dpkg-dev (dpkg-shlibdeps for cargo-deb),
#                                  #   debootstrap and man-db (scripts/package.sh --check)
#   scripts/setup.sh --check test  # only say what is missing (exit 4 when something is)
#
# Only what is missing is installed (idempotent; `apt-get update` runs only then). Package
# scripts are kept from starting system-wide services (dockerd, containerd, docker-registry):
# a temporary /usr/sbin/policy-rc.d that exits 101 while apt runs; the tests and scripts start
# private daemons of their own. Rust is not installed: it is expected from rustup
# (https://rustup.rs); `find_cargo` finds it, also under sudo.
#
# Exit status: 0 everything present, 1 the install failed, 2 usage, 4 something is missing and
# cannot be installed here (not root, or no apt-get): the message names the packages.
#
# Source it to get `setup_packages PURPOSE`, `find_cargo`, `setup_bookworm_tar` (a cached
# debootstrap of Debian bookworm, for scripts/bench.sh and scripts/package.sh) and
# `setup_docker26` and `setup_containerd2` (Debian trixie's Docker 26 and forky's containerd 2.x,
# each unpacked in a cache folder, for the docker26 and containerd tests that scripts/test.sh
# runs) without running anything.

# The packages of each purpose, each as "package:command-or-path[,command...]": the package is
# installed when one of its commands or paths is missing.
SETUP_DEMO=(
  "docker.io:dockerd,docker"
  "minisign:minisign"
  "gzip:gzip"
  "gcc:cc"
  "libc6-dev:/usr/include/stdio.h"
)
SETUP_TEST=(
  "${SETUP_DEMO[@]}"
  "zstd:zstd"
  "pigz:pigz"
  "time:/usr/bin/time"
  "skopeo:skopeo"
  "umoci:umoci"
  "docker-registry:docker-registry"
  "openssl:openssl"
  "python3:python3"
  "podman:podman"
  "containerd:containerd,ctr"
  "chromium:chromium"
)
SETUP_BENCH=(
  "${SETUP_TEST[@]}"
  "debootstrap:debootstrap"
  "python3:python3"
)
SETUP_PACKAGE=(
  "gcc:cc"
  "libc6-dev:/usr/include/stdio.h"
  "dpkg-dev:dpkg-shlibdeps"
  "debootstrap:debootstrap"
  "man-db:man"
)

# setup_missing PURPOSE: prints the missing packages of PURPOSE, one per line.
setup_missing() {
  local -n list="SETUP_${1^^}"
  local entry pkg checks c
  for entry in "${list[@]}"; do
    pkg=${entry%%:*} checks=${entry#*:}
    for c in ${checks//,/ }; do
      if [[ $c == /* ]]; then
        [[ -e $c ]] && continue
      else
        # /usr/sbin is not on a normal user's PATH (dockerd lives there)
        command -v "$c" >/dev/null 2>&1 || [[ -x /usr/sbin/$c || -x /usr/local/sbin/$c ]] && continue
      fi
      echo "$pkg"
      break
    done
  done
}

# setup_apt_install PACKAGE...: apt-get install with services kept from starting.
setup_apt_install() {
  local created=0 rc=0 log
  log=$(mktemp /tmp/partial-setup.XXXXXX)
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# partial-save setup: no service starts while apt-get runs\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created=1
  fi
  echo "setup: installing with apt-get: $* (a minute or two)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >"$log" 2>&1 || rc=$?
  if ((rc == 0)); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null >>"$log" 2>&1 || rc=$?
  fi
  ((created)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || { echo "setup: apt-get failed (exit $rc); its last lines:" >&2; tail -n 15 "$log" >&2; }
  rm -f "$log"
  return "$rc"
}

# setup_packages [--check] PURPOSE: installs what PURPOSE (demo, test, bench) lacks; see the top.
setup_packages() {
  local check=0
  if [[ ${1:-} == --check ]]; then check=1; shift; fi
  local purpose=${1:-}
  case $purpose in
    demo|test|bench|package) ;;
    *) echo "usage: scripts/setup.sh [--check] demo|test|bench|package" >&2; return 2 ;;
  esac
  local missing
  mapfile -t missing < <(setup_missing "$purpose")
  ((${#missing[@]} == 0)) && return 0
  if ((check)); then
    echo "setup: missing for $purpose: ${missing[*]} (install: sudo scripts/setup.sh $purpose)" >&2
    return 4
  fi
  if [[ $(id -u) != 0 ]]; then
    echo "setup: $purpose needs these Debian packages: ${missing[*]}; run as root to install them (sudo scripts/setup.sh $purpose)" >&2
    return 4
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: $purpose needs ${missing[*]}, and there is no apt-get here to install them (this script knows Debian)" >&2
    return 4
  fi
  setup_apt_install "${missing[@]}" || return 1
  mapfile -t missing < <(setup_missing "$purpose")
  if ((${#missing[@]})); then
    echo "setup: still missing after apt-get: ${missing[*]}" >&2
    return 1
  fi
}

# The test-only Helm renderer (tests/helm/helm) runs on PyPI's helm-python-sdk.
SETUP_HELM_SDK="helm-python-sdk==0.2.2"

# setup_python_test: installs pip (Debian's python3-pip) when python3 has none, then
# helm-python-sdk when it cannot be imported. Root only; a no-op when both are there.
setup_python_test() {
  python3 -c 'import helm_python' >/dev/null 2>&1 && return 0
  if [[ $(id -u) != 0 ]]; then
    echo "setup: the chart tests need PyPI's $SETUP_HELM_SDK (sudo scripts/setup.sh test)" >&2
    return 4
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    setup_apt_install python3-pip || return 1
  fi
  echo "setup: installing $SETUP_HELM_SDK with pip" >&2
  # Debian's own python3 refuses system-wide pip installs (PEP 668) unless told.
  python3 -m pip install -q "$SETUP_HELM_SDK" </dev/null ||
    python3 -m pip install -q --break-system-packages "$SETUP_HELM_SDK" </dev/null || return 1
  python3 -c 'import helm_python' >/dev/null 2>&1 || {
    echo "setup: $SETUP_HELM_SDK installed but cannot be imported by python3" >&2
    return 1
  }
}

# setup_apt_mirror: the Debian mirror this machine's apt already uses (deb822 .sources files,
# then sources.list), security archives left out.
setup_apt_mirror() {
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb[[:space:]]' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'
  } | grep -v -- '-security' | head -n 1
}

# setup_bookworm_tar CACHE_DIR: prints the path of CACHE_DIR/bookworm-minbase-v1.tar, a tarball
# of `debootstrap --variant=minbase bookworm` with the downloaded packages and apt lists
# removed (what a published slim base image leaves out). Made once from BENCH_MIRROR or the
# machine's apt mirror (setup_apt_mirror), then reused. Root and debootstrap needed to make it.
setup_bookworm_tar() {
  local cache=$1 tar=$1/bookworm-minbase-v1.tar mirror work
  if [[ -s $tar ]]; then echo "$tar"; return 0; fi
  mirror=${BENCH_MIRROR:-$(setup_apt_mirror)}
  if [[ -z $mirror ]]; then
    echo "setup: no Debian mirror in this machine's apt sources: set BENCH_MIRROR" >&2
    return 1
  fi
  mkdir -p "$cache" && work=$(mktemp -d "$cache/.debootstrap.XXXXXX") || return 1
  echo "setup: debootstrap --variant=minbase bookworm from $mirror (cached in $cache for the next runs)" >&2
  if ! debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    echo "setup: debootstrap failed; its log:" >&2
    tail -n 20 "$work/debootstrap.log" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  if ! tar -C "$work/rootfs" --numeric-owner -cf "$tar.part" . || ! mv "$tar.part" "$tar"; then
    echo "setup: cannot write $tar" >&2
    rm -rf "$work" "$tar.part"
    return 1
  fi
  rm -rf "$work"
  echo "$tar"
}

# Runtimes newer than bookworm's, for the tests that run against several releases: Debian
# packages of a later suite fetched and unpacked into a cache folder without touching this
# machine's apt state (its own sources list, lists, package cache and archives under the cache
# folder). The system's docker.io (20.10) and containerd (1.6) stay; the rig runs the unpacked
# binaries from the folder with its bin dirs first on PATH, so they find their own containerd,
# shim and runc.
#
# Docker 26 for the docker26 tests (tests/tests/e2e/docker26.rs): trixie's docker.io and
# containerd (1.7, also the containerd 1.7 of the containerd tests).
SETUP_DOCKER26_SUITE=trixie
SETUP_DOCKER26_PACKAGES=(docker.io docker-cli containerd runc tini)
# containerd 2.x for the containerd tests (tests/tests/e2e/containerd.rs): forky's containerd
# (2.1 when this was written) and runc. forky is Debian's testing suite: the version moves, and
# the tests check only that it is a 2.x.
SETUP_CONTAINERD2_SUITE=forky
SETUP_CONTAINERD2_PACKAGES=(containerd runc)

# setup_docker26 [CACHE_DIR]: prints the unpacked root (CACHE_DIR/root, with usr/sbin/dockerd,
# usr/bin/docker, containerd, containerd-shim-runc-v2 and runc); CACHE_DIR defaults to
# PARTIAL_DOCKER26_CACHE or /var/cache/partial-tests/docker26.
setup_docker26() {
  setup_unpacked "${1:-${PARTIAL_DOCKER26_CACHE:-/var/cache/partial-tests/docker26}}" \
    usr/sbin/dockerd "$SETUP_DOCKER26_SUITE" "${SETUP_DOCKER26_PACKAGES[@]}"
}

# setup_containerd2 [CACHE_DIR]: prints the unpacked root (CACHE_DIR/root, with usr/bin/containerd,
# ctr, containerd-shim-runc-v2 and runc); CACHE_DIR defaults to PARTIAL_CONTAINERD2_CACHE or
# /var/cache/partial-tests/containerd2.
setup_containerd2() {
  setup_unpacked "${1:-${PARTIAL_CONTAINERD2_CACHE:-/var/cache/partial-tests/containerd2}}" \
    usr/bin/containerd "$SETUP_CONTAINERD2_SUITE" "${SETUP_CONTAINERD2_PACKAGES[@]}"
}

# setup_unpacked CACHE_DIR MUST_HAVE SUITE PACKAGE...: fetches the packages of Debian SUITE that
# exist there and unpacks them into CACHE_DIR/root, which must then hold MUST_HAVE; prints the
# root. Idempotent: a root unpacked before (its .complete marker names the same suite and
# package list) is reused without a network access.
setup_unpacked() {
  local cache=$1 must=$2 suite=$3
  shift 3
  local root=$cache/root want mirror apt_opts pkgs=() p work deb t0
  want="$suite $*"
  if [[ -x $root/$must && $(cat "$root/.complete" 2>/dev/null) == "$want" ]]; then
    echo "$root"
    return 0
  fi
  mirror=${PARTIAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  t0=$(date +%s)
  echo "setup: fetching Debian $suite's $* into $cache (once; the system's apt state is not touched)" >&2
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/archives/partial" "$cache/apt/cache" || return 1
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
    "$mirror" "$suite" >"$cache/apt/sources.list"
  apt_opts=(
    -o "Dir::Etc::sourcelist=$cache/apt/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache"
    -o "Dir::Cache::archives=$cache/apt/archives"
  )
  if ! apt-get "${apt_opts[@]}" -qq update </dev/null >"$cache/apt.log" 2>&1; then
    echo "setup: apt-get update for $suite failed; its last lines:" >&2
    tail -n 15 "$cache/apt.log" >&2
    return 1
  fi
  # Some packages exist only in some releases (docker-cli): take what exists.
  for p in "$@"; do
    if apt-cache "${apt_opts[@]}" show "$p" >/dev/null 2>&1; then pkgs+=("$p"); fi
  done
  work=$(mktemp -d "$cache/.fetch.XXXXXX") || return 1
  if ! (cd "$work" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" </dev/null >>"$cache/apt.log" 2>&1); then
    echo "setup: apt-get download ${pkgs[*]} failed; its last lines:" >&2
    tail -n 15 "$cache/apt.log" >&2
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$work/root"
  for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/root" || { rm -rf "$work"; return 1; }
  done
  if [[ ! -x $work/root/$must ]]; then
    echo "setup: no $must in ${pkgs[*]} from $suite" >&2
    rm -rf "$work"
    return 1
  fi
  ls "$work"/*.deb | xargs -n1 basename >"$work/root/.debs"
  echo "$want" >"$work/root/.complete"
  rm -rf "$root" && mv "$work/root" "$root" && rm -rf "$work" || return 1
  echo "setup: $(tr '\n' ' ' <"$root/.debs")unpacked in $root in $(($(date +%s) - t0)) s" >&2
  echo "$root"
}

# find_cargo: puts rustup's cargo on PATH when it is not (a login shell's ~/.cargo/env, or under
# sudo the invoking user's toolchain); fails with a hint when there is none.
find_cargo() {
  command -v cargo >/dev/null 2>&1 && return 0
  # shellcheck disable=SC1091
  [[ -f $HOME/.cargo/env ]] && . "$HOME/.cargo/env"
  command -v cargo >/dev/null 2>&1 && return 0
  if [[ -n ${SUDO_USER:-} ]]; then
    local home
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [[ -x $home/.cargo/bin/cargo ]]; then
      export CARGO_HOME=${CARGO_HOME:-$home/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$home/.rustup}
      export PATH=$home/.cargo/bin:$PATH
      return 0
    fi
  fi
  echo "error: cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
  return 1
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -uo pipefail
  setup_packages "$@" || exit
  if [[ ${*: -1} == test && ${1:-} != --check ]]; then setup_python_test; fi
fi
