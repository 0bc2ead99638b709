# shellcheck shell=bash
# Private Docker daemons for the demo and the benchmark: each with its own data root, exec root,
# pidfile and socket under a work folder, no bridge and no iptables, stopped (with its
# containerd) by stop_daemons. Source this file; needs root and Debian's docker.io.

require_docker_tools() {
  local missing=()
  [ "$(id -u)" = 0 ] || { echo "error: this needs root (it starts private dockerd daemons); run it with sudo" >&2; exit 1; }
  command -v dockerd >/dev/null || missing+=(dockerd)
  command -v docker >/dev/null || missing+=(docker)
  if ((${#missing[@]})); then
    echo "error: ${missing[*]} not found: install Debian's docker.io (apt-get install docker.io)" >&2
    exit 1
  fi
}

# start_daemon NAME DIR: starts dockerd under DIR/NAME; sets NAME_HOST=unix://…
STARTED_DAEMONS=()
start_daemon() {
  local name=$1 dir=$2/$1
  mkdir -p "$dir"
  dockerd --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/pid" \
    -H "unix://$dir/docker.sock" --bridge=none --iptables=false --ip6tables=false \
    >"$dir/log" 2>&1 &
  STARTED_DAEMONS+=("$dir")
  local i
  for i in $(seq 1 120); do
    if docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; then
      printf -v "${name}_HOST" '%s' "unix://$dir/docker.sock"
      return 0
    fi
    sleep 0.5
  done
  echo "error: dockerd '$name' did not start; its log:" >&2
  tail -n 20 "$dir/log" >&2
  return 1
}

stop_daemons() {
  local dir pid
  for dir in "${STARTED_DAEMONS[@]}"; do
    for pid in "$(cat "$dir/pid" 2>/dev/null)" "$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null)"; do
      [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
  done
  for dir in "${STARTED_DAEMONS[@]}"; do
    for pid in "$(cat "$dir/pid" 2>/dev/null)" "$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null)"; do
      [ -n "$pid" ] || continue
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    done
  done
  STARTED_DAEMONS=()
}

# random_file PATH MB: a file of MB MiB of incompressible data.
random_file() {
  mkdir -p "$(dirname "$1")"
  head -c $(($2 * 1024 * 1024)) /dev/urandom >"$1"
}
