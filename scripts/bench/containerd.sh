# containerd section of scripts/bench.sh (sourced; uses its W, O, S, LOAD, IMG, OLD, LOAD_KEY,
# RESULTS, RUNS, measure, alternate, log). A private containerd (Debian's, or PARTIAL_CONTAINERD_BIN)
# with its root, state and socket under the work folder, the CRI plugin disabled (never the
# system's service). Its namespace `bench` holds $OLD, imported from a raw `docker save` with
# `ctr images import` (untimed); that state is kept, and every run starts from it (containerd
# stopped, its root restored, started again: untimed), so no run finds the blobs of the one before.
# Then, side by side (issue 21's target: ≤ 1.3×, ≤ 64 MiB):
#   - `partial-load load BUNDLE --containerd SOCK --namespace bench` (the gzip bench bundle);
#   - `ctr images import FULL.tar` of a raw `docker save` of $IMG into the same namespace (the
#     plain way: a whole archive, its base layers already there), unpacked as ours is.

CTRD_DIR=
CTRD_PID=

# ctrd_config DIR: containerd's config with everything under DIR.
ctrd_config() {
  cat <<EOF
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$1/containerd.sock"

[ttrpc]
  address = "$1/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$1/opt"
EOF
}

# ctrd_start: starts the private containerd on CTRD_DIR and waits until `ctr version` answers.
ctrd_start() {
  local i bin=${PARTIAL_CONTAINERD_BIN:-containerd}
  "$bin" --config "$CTRD_DIR/config.toml" >>"$W/logs/containerd.log" 2>&1 &
  CTRD_PID=$!
  for ((i = 0; i < 300; i++)); do
    ctr -a "$CTRD_DIR/containerd.sock" version >/dev/null 2>&1 && return 0
    kill -0 "$CTRD_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "error: containerd did not start; its log:" >&2
  tail -n 20 "$W/logs/containerd.log" >&2
  return 1
}

# ctrd_stop: stops it (SIGTERM, then SIGKILL) and detaches the mounts it left.
ctrd_stop() {
  local i
  [[ -n $CTRD_PID ]] || return 0
  kill "$CTRD_PID" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$CTRD_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$CTRD_PID" 2>/dev/null
  wait "$CTRD_PID" 2>/dev/null
  CTRD_PID=
  grep -o " $CTRD_DIR/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  return 0
}

# ctrd_reset: before each timed run: containerd restarted on the root that holds only $OLD.
ctrd_reset() {
  ctrd_stop
  rm -rf "$CTRD_DIR/root" "$CTRD_DIR/state" && cp -a "$CTRD_DIR/root-base" "$CTRD_DIR/root" && ctrd_start
}

# ctrd_snapshotter: overlayfs when containerd loaded it (it cannot on every filesystem), else native.
ctrd_snapshotter() {
  if ctr -a "$CTRD_DIR/containerd.sock" plugins ls 2>/dev/null | grep -E 'io.containerd.snapshotter.v1 +overlayfs +.* ok' >/dev/null; then
    echo overlayfs
  else
    echo native
  fi
}

containerd_section() {
  local snap ns=bench sock
  if ! command -v ctr >/dev/null || ! command -v "${PARTIAL_CONTAINERD_BIN:-containerd}" >/dev/null; then
    echo "error: containerd or ctr missing (scripts/setup.sh bench installs containerd)" >&2
    return 1
  fi
  CTRD_DIR=$W/containerd
  mkdir -p "$CTRD_DIR"
  ctrd_config "$CTRD_DIR" >"$CTRD_DIR/config.toml"
  sock=$CTRD_DIR/containerd.sock
  log "containerd: a private instance under $CTRD_DIR"
  ctrd_start || return 1
  snap=$(ctrd_snapshotter)
  log "containerd: snapshotter $snap; importing $OLD into namespace $ns (docker save | ctr import, untimed)"
  if ! { "${S[@]}" save "$OLD" >"$O/ctrd-base.tar" &&
    ctr -a "$sock" -n "$ns" images import --snapshotter "$snap" "$O/ctrd-base.tar"; } >"$W/logs/ctrd-base.log" 2>&1; then
    echo "error: importing $OLD into containerd failed:" >&2; tail -n 5 "$W/logs/ctrd-base.log" >&2
    ctrd_stop; return 1
  fi
  rm -f "$O/ctrd-base.tar"
  ctrd_stop
  cp -a "$CTRD_DIR/root" "$CTRD_DIR/root-base"
  "${S[@]}" save "$IMG" >"$O/ctrd-full.tar" || { ctrd_reset; ctrd_stop; return 1; }
  alternate none \
    -- ctrd-pl "partial-load load --containerd (gzip bundle, namespace holding $OLD; $snap)" containerd - ctrd_reset \
    "$LOAD" load "$O/bundle-gzip" "${LOAD_KEY[@]}" --containerd "$sock" --namespace "$ns" --snapshotter "$snap" \
    -- ctrd-import "ctr images import FULL.tar (docker save of $IMG; $snap)" containerd - ctrd_reset \
    ctr -a "$sock" -n "$ns" images import --snapshotter "$snap" "$O/ctrd-full.tar"
  ctrd_stop
  rm -rf "$O/ctrd-full.tar" "$CTRD_DIR"
}
