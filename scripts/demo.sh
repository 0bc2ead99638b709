#!/usr/bin/env bash
# The whole paired workflow on two private daemons, for a newcomer:
#   "connected" daemon: a base image, app:1 and app:2 (app:2 = base + new app layer + hotfix);
#   "air-gapped" daemon: already has base and app:1;
#   inventory the air-gapped side, export app:2 against that inventory with a fresh key,
#   verify and load on the air-gapped side, and compare with a full save.
# The README's first command, `sudo scripts/demo.sh`: as root on Debian it installs what is missing
# with apt-get (scripts/setup.sh demo: docker.io, minisign, a C compiler; no system-wide dockerd
# is started), builds the tools (Rust from rustup is expected) and runs. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
. scripts/daemons.sh
if [[ $(id -u) != 0 ]]; then
  echo "error: the demo needs root: it installs Debian's docker.io when missing and starts two private dockerd daemons; run: sudo scripts/demo.sh" >&2
  setup_packages --check demo || true
  exit 1
fi
setup_packages demo
find_cargo
require_docker_tools

echo "== building partial-save and partial-load (release)"
cargo build --release -q -p partial-save -p partial-load
SAVE=$PWD/target/release/partial-save
LOAD=$PWD/target/release/partial-load

W=$(mktemp -d /tmp/partial-demo.XXXXXX)
trap 'stop_daemons; rm -rf "$W"' EXIT
echo "== starting two private daemons under $W"
start_daemon connected "$W"
start_daemon airgap "$W"
C=(docker -H "$connected_HOST")
A=(docker -H "$airgap_HOST")

echo "== connected side: building base:1, app:1, app:2"
mkdir -p "$W/rootfs/etc" "$W/ctx1" "$W/ctx2"
echo "demo base" >"$W/rootfs/etc/os-release"
random_file "$W/rootfs/usr/lib/base.bin" 40
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
"${C[@]}" import "$W/rootfs.tar" base:1 >/dev/null
random_file "$W/ctx1/app.bin" 20
printf 'FROM base:1\nCOPY app.bin /app/app.bin\n' >"$W/ctx1/Dockerfile"
DOCKER_BUILDKIT=0 "${C[@]}" build -q -t app:1 "$W/ctx1" >/dev/null
random_file "$W/ctx2/app.bin" 20
echo "hotfix 2" >"$W/ctx2/hotfix.txt"
printf 'FROM base:1\nCOPY app.bin /app/app.bin\nCOPY hotfix.txt /app/hotfix.txt\n' >"$W/ctx2/Dockerfile"
DOCKER_BUILDKIT=0 "${C[@]}" build -q -t app:2 "$W/ctx2" >/dev/null

echo "== air-gapped side already has base:1 and app:1 (from an earlier transfer)"
"${C[@]}" save base:1 app:1 | "${A[@]}" load >/dev/null

echo "== air-gapped side: partial-load inventory"
"$LOAD" inventory -H "$airgap_HOST" -o "$W/have.json"

echo "== connected side: keygen, then partial-save against the inventory"
"$SAVE" keygen -o "$W/team" --no-password
"$SAVE" -H "$connected_HOST" -i app:2 --have "$W/have.json" -o "$W/app.tgz" --sign-key "$W/team.key"

echo "== (the stock minisign tool can check the signature too)"
if command -v minisign >/dev/null; then minisign -Vm "$W/app.tgz.manifest.json" -p "$W/team.pub"; fi

echo "== air-gapped side: verify, then load"
"$LOAD" verify "$W/app.tgz" --key "$W/team.pub" -H "$airgap_HOST"
"$LOAD" load "$W/app.tgz" --key "$W/team.pub" -H "$airgap_HOST"

src_id=$("${C[@]}" image inspect -f '{{.Id}}' app:2)
dst_id=$("${A[@]}" image inspect -f '{{.Id}}' app:2)
[ "$src_id" = "$dst_id" ] || { echo "error: image IDs differ: $src_id vs $dst_id" >&2; exit 1; }
full=$("${C[@]}" save app:2 | gzip -6 | wc -c)
sent=$(stat -c %s "$W/app.tgz")
echo
echo "app:2 arrived with the same image ID: $dst_id"
printf 'sent %s bytes (partial-save bundle) instead of %s bytes (docker save | gzip): %s%% of a full save\n' \
  "$sent" "$full" "$((100 * sent / full))"
