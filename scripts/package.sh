#!/usr/bin/env bash
# Debian packages of the two tools, one each, built with cargo-deb:
#
#   scripts/package.sh               # target/debian/partial-save_*.deb, target/debian/partial-load_*.deb
#   sudo scripts/package.sh --check  # the same, then checks them in a clean Debian bookworm root
#
# Each package holds its binary (/usr/bin), its man pages (/usr/share/man/man1: the tool's page
# and one per subcommand), bash, zsh and fish completions (/usr/share/bash-completion/completions,
# /usr/share/zsh/vendor-completions, /usr/share/fish/vendor_completions.d), the README and the
# copyright file with both licences (/usr/share/doc/PACKAGE). Its Depends come from
# dpkg-shlibdeps: the C library only; docker.io and containerd are Suggests.
#
# Steps: cargo-deb is installed when missing (`cargo install cargo-deb --locked`); `cargo xtask
# assets` renders the man pages, completions and copyright file into target/assets (they are
# generated here, never committed: see xtask/src/main.rs); `cargo deb -p partial-save` and
# `-p partial-load` build the release binaries and the packages.
#
# --check (root; what .ci/run runs), after building:
#   - dpkg-deb -I / -c: the package names, Depends (libc6 and libgcc-s1, which libc6 itself
#     needs, nothing else), Suggests, and every file above;
#   - a clean root: `debootstrap --variant=minbase bookworm`, made once and cached as a tarball
#     (the one scripts/bench.sh uses, in BENCH_CACHE, default /var/cache/partial-bench), unpacked
#     into a temporary folder; there, `dpkg -i` of partial-load alone (nothing else installed:
#     no Rust, no Python), `ldd` of its binary (C library only), `partial-load --version` (with
#     its commit), then partial-save likewise;
#   - `man -w partial-load` and every other page, looked up in that root's man tree by the host's
#     man-db (the minimal root has no man), each rendered with --warnings: none allowed.
# Prints how long the check took. Exit status: 0 packages built (and checked), 1 a step failed,
# 2 usage, 4 something needed is missing and cannot be installed here (not root).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

CHECK=0
while (($#)); do
  case $1 in
    --check) CHECK=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

start=$(date +%s)
log() { printf '== package.sh: %s\n' "$*" >&2; }
fail() { echo "package.sh: error: $*" >&2; exit 1; }

find_cargo
if [[ $(id -u) == 0 ]]; then
  setup_packages package || exit
elif ((CHECK)); then
  echo "package.sh: --check installs packages into a chroot: run it as root" >&2
  exit 4
else
  setup_packages --check package || true
fi
if ! cargo deb --version >/dev/null 2>&1; then
  log "installing cargo-deb (cargo install cargo-deb --locked; a few minutes, once)"
  cargo install cargo-deb --locked
fi

log "man pages, completions and copyright into target/assets (cargo xtask assets)"
cargo xtask assets
rm -f target/debian/partial-save_*.deb target/debian/partial-load_*.deb
for pkg in partial-save partial-load; do
  log "cargo deb -p $pkg"
  # stripped, and built without the debug info of [profile.release] that strip would remove.
  # cargo-deb warns about asset paths under a target/ folder that are not target/release/:
  # ours are the generated files of target/assets, nothing for it to build. That line is dropped.
  cargo deb -p "$pkg" --strip --override-debug none 2>&1 |
    { grep -v "^warning: Only source paths starting with exactly 'target/release/'" || true; }
done
SAVE_DEB=$(ls target/debian/partial-save_*.deb)
LOAD_DEB=$(ls target/debian/partial-load_*.deb)
for deb in "$SAVE_DEB" "$LOAD_DEB"; do
  echo "package.sh: $deb ($(du -k "$deb" | cut -f1) KiB)"
done
if ((!CHECK)); then
  exit 0
fi

# --- the packages' fields and files -------------------------------------------------------
# expect_files DEB PACKAGE: the binary, every man page of target/assets, the completions, docs.
expect_files() {
  local deb=$1 pkg=$2 listing page
  listing=$(dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|')
  local want=(
    "/usr/bin/$pkg"
    "/usr/share/bash-completion/completions/$pkg"
    "/usr/share/zsh/vendor-completions/_$pkg"
    "/usr/share/fish/vendor_completions.d/$pkg.fish"
    "/usr/share/doc/$pkg/copyright"
    "/usr/share/doc/$pkg/README.md"
  )
  for page in target/assets/"$pkg"/man/*.1; do
    want+=("/usr/share/man/man1/$(basename "$page").gz")
  done
  for f in "${want[@]}"; do
    grep -qxF "$f" <<<"$listing" || fail "$deb lacks $f"
  done
}
# expect_fields DEB PACKAGE: name, Depends on the C library only, the Suggests.
expect_fields() {
  local deb=$1 pkg=$2 depends suggests
  [[ $(dpkg-deb -f "$deb" Package) == "$pkg" ]] || fail "$deb is not package $pkg"
  depends=$(dpkg-deb -f "$deb" Depends)
  suggests=$(dpkg-deb -f "$deb" Suggests)
  # libgcc-s1 (stack unwinding) is a dependency of libc6 itself: on every Debian system
  local dep
  while read -r dep; do
    [[ $dep =~ ^(libc6|libgcc-s1)(\ \(.*\))?$ ]] || fail "$deb depends on $dep (only the C library is allowed)"
  done < <(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ *$//')
  [[ $depends == *libc6* ]] || fail "$deb: no libc6 in Depends ($depends): was dpkg-shlibdeps there?"
  [[ $suggests == "docker.io, containerd" ]] || fail "$deb: Suggests is '$suggests'"
  echo "package.sh: $pkg: Depends: $depends; Suggests: $suggests"
}
expect_fields "$LOAD_DEB" partial-load
expect_fields "$SAVE_DEB" partial-save
expect_files "$LOAD_DEB" partial-load
expect_files "$SAVE_DEB" partial-save

# --- a clean bookworm root ------------------------------------------------------------------
CACHE=${BENCH_CACHE:-/var/cache/partial-bench}
TAR=$(setup_bookworm_tar "$CACHE") || fail "no bookworm root (debootstrap)"
CHROOT=$(mktemp -d /tmp/partial-package-check.XXXXXX)
trap 'rm -rf "$CHROOT"' EXIT
tar -C "$CHROOT" -xf "$TAR"
for tool in rustc cargo python3; do
  if chroot "$CHROOT" sh -c "command -v $tool" >/dev/null 2>&1; then
    fail "the clean root has $tool: not a clean root"
  fi
done
cp "$LOAD_DEB" "$SAVE_DEB" "$CHROOT/tmp/"

# install_in_root PACKAGE DEB: dpkg -i in the chroot, then what its binary links and --version.
install_in_root() {
  local pkg=$1 deb=$2 libs version
  log "dpkg -i $(basename "$deb") in a clean bookworm root"
  chroot "$CHROOT" dpkg -i "/tmp/$(basename "$deb")" >/dev/null || fail "dpkg -i of $pkg failed"
  libs=$(chroot "$CHROOT" ldd "/usr/bin/$pkg") || fail "ldd /usr/bin/$pkg failed in the root"
  while read -r lib _; do
    case $lib in
      linux-vdso.so.*|libc.so.*|libm.so.*|libgcc_s.so.*|/lib64/ld-linux-*) ;;
      *) fail "/usr/bin/$pkg links $lib (only the C library is allowed):"$'\n'"$libs" ;;
    esac
  done <<<"$libs"
  if grep -q 'not found' <<<"$libs"; then
    fail "/usr/bin/$pkg: a library is missing:"$'\n'"$libs"
  fi
  version=$(chroot "$CHROOT" "$pkg" --version) || fail "$pkg --version failed in the root"
  echo "package.sh: installed in the clean root: $version"
  [[ $version =~ ^$pkg\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ ([0-9a-f]{12}(,\ dirty)?|unknown)\)$ ]] ||
    fail "unexpected --version: $version"
}
install_in_root partial-load "$LOAD_DEB"
install_in_root partial-save "$SAVE_DEB"

# man -w finds each page in the root's man tree, and each renders without a warning.
for page in target/assets/partial-load/man/*.1 target/assets/partial-save/man/*.1; do
  name=$(basename "$page" .1)
  found=$(man -M "$CHROOT/usr/share/man" -w "$name") || fail "man -w $name: not in the root"
  [[ $found == "$CHROOT/usr/share/man/man1/$name.1.gz" ]] || fail "man -w $name: $found"
  warnings=$(MANWIDTH=80 man --warnings -M "$CHROOT/usr/share/man" "$name" 2>&1 >/dev/null) || fail "man $name failed"
  [[ -z $warnings ]] || fail "man $name warns:"$'\n'"$warnings"
done
echo "package.sh: man -w partial-load: $(man -M "$CHROOT/usr/share/man" -w partial-load | sed "s|^$CHROOT||") (in the root)"
echo "package.sh: check passed in $(($(date +%s) - start)) s"
