#!/usr/bin/env bash
# Benchmark: partial-save / partial-load side by side with docker save, gzip, zstd and
# docker load, on two private daemons; `partial-load push` into a private
# docker-registry holding the old version against `skopeo copy` of the whole image, and
# `partial-save` from that registry against from the daemon (scripts/bench/registry.sh);
# `partial-load load --containerd` against `ctr images import` (scripts/bench/containerd.sh); and the
# gzip export speed against the raw save in alternating rounds, on the bench set and on
# a set with about 20 % new (scripts/bench/speed.sh). Not a test: it measures and reports.
#
#   sudo scripts/bench.sh            # full run: real Debian rootfs (debootstrap), ~400 MB app layer
#   sudo scripts/bench.sh --tiny     # a few MB, no debootstrap; for CI, under a minute
#   sudo scripts/bench.sh --big      # how cost grows: images of 0.6, 2.5 and 10 GiB (~1 hour,
#                                    # ~60 GB free disk); the table goes into docs/benchmarks.md
#
# Options:
#   --tiny          small generated image set (skips debootstrap); writes to target/bench-tiny/
#   --big           instead of the image set: one image per size in BENCH_BIG_GIB, each the Debian
#                   base plus one new layer of application files (the 10 GiB one has a layer over
#                   8 GiB, whose tar size needs PAX/base-256, and ~170,000 files): raw save,
#                   partial-save (gzip), verify, load and rehydrate, each once; then a generated
#                   archive whose layer is 8.25 GiB of zeros (holes: no disk), exported offline,
#                   verified and loaded; replaces the "Scale" section of benchmarks.md
#   --runs N        repeat every measurement N times, report the median wall time (default 3; tiny 1;
#                   the alternating speed rounds: at least 5)
#   --out DIR       where benchmarks.md and benchmarks.png go (default docs/, tiny: target/bench-tiny/)
#   --no-build      use the binaries already in target/release instead of building them
#   --keep          keep the work folder (daemon data, bundles, logs) after the run
# Environment:
#   BENCH_DIR       work folder (default: a new /tmp/partial-bench.XXXXXX, removed at the end)
#   BENCH_APP_MB    size of each application layer in MiB (default 400)
#   BENCH_RUNTIME_MB size of the runtime layer in MiB (default 100)
#   BENCH_PLUS_MB   the new layer of app:1-plus, the speed series' ~20 %-new set (default 3/8 of
#                   BENCH_APP_MB: 150)
#   BENCH_BIG_GIB   the image sizes of --big in GiB (default "0.6 2.5 10")
#   BENCH_HUGE_GIB  the layer of zeros of --big's generated archive (default 8.25: over 8 GiB)
#   BENCH_MIRROR    Debian mirror for debootstrap (default: the first Debian mirror in this
#                   machine's apt sources)
#   BENCH_CACHE     where the Debian rootfs tarball is cached (default /var/cache/partial-bench)
#   BENCH_SAVE, BENCH_LOAD  partial-save / partial-load binaries to measure instead of building
#                   target/release/ (implies --no-build)
#
# Needs root; installs what is missing with apt-get (scripts/setup.sh bench: docker.io, zstd, pigz,
# time, debootstrap, python3, ...; gnuplot-nox for the chart). Exit status: 0 when every step ran, 1 when a
# step failed (the report marks it), 2 on bad usage. Missed targets do not change the exit status.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
# shellcheck source=scripts/daemons.sh
. scripts/daemons.sh
# shellcheck source=scripts/bench/registry.sh
. scripts/bench/registry.sh
# shellcheck source=scripts/bench/containerd.sh
. scripts/bench/containerd.sh

TINY=0 BIG=0 RUNS="" OUT="" BUILD=1 KEEP=0
ARGS=("$@")
while (($#)); do
  case $1 in
    --tiny) TINY=1 ;;
    --big) BIG=1 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift ;;
    --out) OUT=${2:?--out needs a folder}; shift ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
((TINY && BIG)) && { echo "error: --tiny and --big exclude each other" >&2; exit 2; }
[[ -z $RUNS ]] && RUNS=$((TINY || BIG ? 1 : 3))
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "error: --runs wants a positive number" >&2; exit 2; }
if ((TINY)); then
  APP_MB=${BENCH_APP_MB:-4} RUNTIME_MB=${BENCH_RUNTIME_MB:-2}
  OUT=${OUT:-$ROOT/target/bench-tiny}
else
  APP_MB=${BENCH_APP_MB:-400} RUNTIME_MB=${BENCH_RUNTIME_MB:-100}
  OUT=${OUT:-$ROOT/docs}
fi
CACHE=${BENCH_CACHE:-/var/cache/partial-bench}
COMMAND="sudo scripts/bench.sh${ARGS[*]:+ ${ARGS[*]}}"
((TINY)) || [[ -z ${BENCH_APP_MB:-} ]] || COMMAND="BENCH_APP_MB=$APP_MB $COMMAND"

LOADAVG0=$(cut -d' ' -f1 /proc/loadavg)
log() { printf '== %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------------
setup_packages bench || exit 1
require_docker_tools
command -v gnuplot >/dev/null || setup_apt_install gnuplot-nox || echo "warning: no gnuplot; the chart will be missing" >&2

# --- work folder, daemons --------------------------------------------------------------------
if [[ -n ${BENCH_DIR:-} ]]; then
  W=$BENCH_DIR; mkdir -p "$W"; KEEP=1
else
  W=$(mktemp -d /tmp/partial-bench.XXXXXX)
fi
cleanup() {
  stop_registries
  ctrd_stop
  stop_daemons
  if ((KEEP)); then echo "work folder kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$W/logs" "$W/out" "$W/ctx" "$OUT"
RESULTS=$W/results.tsv
: >"$RESULTS"
FAILED=0

# --- 1. build --------------------------------------------------------------------------------
SAVE=${BENCH_SAVE:-$ROOT/target/release/partial-save}
LOAD=${BENCH_LOAD:-$ROOT/target/release/partial-load}
[[ -n ${BENCH_SAVE:-}${BENCH_LOAD:-} ]] && BUILD=0
BUILD_NOTE=""
if ((BUILD)); then
  log "building partial-save and partial-load (release)"
  find_cargo || exit 1
  if ! cargo build --release -q -p partial-save -p partial-load >"$W/logs/cargo.log" 2>&1; then
    BUILD_NOTE="cargo build failed: $(grep -m1 -E '^error' "$W/logs/cargo.log" || tail -n1 "$W/logs/cargo.log")"
    echo "error: $BUILD_NOTE (the partial-save/partial-load steps will be marked failed)" >&2
    tail -n 15 "$W/logs/cargo.log" >&2
    SAVE=$W/missing/partial-save LOAD=$W/missing/partial-load
  fi
fi
for b in "$SAVE" "$LOAD"; do
  [[ -x $b ]] || { BUILD_NOTE=${BUILD_NOTE:-"$b not built"}; }
done

log "starting two private daemons under $W"
start_daemon source "$W" || exit 1
start_daemon airgap "$W" || exit 1
# shellcheck disable=SC2154 # set by start_daemon
S=(docker -H "$source_HOST")
# shellcheck disable=SC2154
A=(docker -H "$airgap_HOST")

# --- measuring ------------------------------------------------------------------------------
# measure ID LABEL GROUP OUTFILE BEFORE-FUNCTION CMD...: runs CMD RUNS times under
# /usr/bin/time (after BEFORE-FUNCTION, untimed) and appends to results.tsv: id, label, group,
# status, median wall s, max peak RSS KiB, bytes of OUTFILE ("-": nothing measurable), fastest
# and slowest wall s, median client CPU s (user + system, all processes), median CPU s of the two
# daemons, and a note (the first error line when it failed).
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
none() { :; }
TICKS=$(getconf CLK_TCK)
daemon_cpu() { # CPU seconds used so far by the private dockerds and the children they waited for
  local d total=0 pid t
  for d in "${STARTED_DAEMONS[@]}"; do
    pid=$(cat "$d/pid" 2>/dev/null) || continue
    t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + t))
  done
  awk -v t="$total" -v hz="$TICKS" 'BEGIN { printf "%.2f", t / hz }'
}
measure() {
  local id=$1 label=$2 group=$3 outfile=$4 before=$5; shift 5
  local r rc=0 walls=() cpus=() dcpus=() rss=0 bytes=- note="" d0 d1
  local tf=$W/logs/$id.time ef=$W/logs/$id.err
  log "measuring: $label"
  if [[ -n $BUILD_NOTE && ($* == *"$SAVE"* || $* == *"$LOAD"*) ]]; then
    note=$BUILD_NOTE rc=1
  else
    for ((r = 1; r <= RUNS; r++)); do
      "$before" || { note="preparing the run failed"; rc=1; break; }
      [[ $outfile != - ]] && rm -f "$outfile"
      d0=$(daemon_cpu)
      /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >"$W/logs/$id.out" 2>"$ef"
      rc=$?
      d1=$(daemon_cpu)
      if ((rc != 0)); then
        note="exit $rc: $(grep -v '^Command exited' "$ef" | grep -m1 -iE 'error|fail|denied|invalid|not ' || grep -v '^Command exited' "$ef" | tail -n1)"
        break
      fi
      walls+=("$(awk 'END { print $1 }' "$tf")")
      cpus+=("$(awk 'END { printf "%.2f", $3 + $4 }' "$tf")")
      dcpus+=("$(awk -v a="$d0" -v b="$d1" 'BEGIN { printf "%.2f", b - a }')")
      rss=$(awk -v m="$rss" 'END { print ($2 > m ? $2 : m) }' "$tf")
    done
  fi
  if ((rc == 0)); then
    [[ $outfile != - && -e $outfile ]] && bytes=$(stat -c %s "$outfile")
    printf '%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$label" "$group" \
      "$(printf '%s\n' "${walls[@]}" | median)" "$rss" "$bytes" \
      "$(printf '%s\n' "${walls[@]}" | sort -g | head -n1)" "$(printf '%s\n' "${walls[@]}" | sort -g | tail -n1)" \
      "$(printf '%s\n' "${cpus[@]}" | median)" "$(printf '%s\n' "${dcpus[@]}" | median)" "${EXTRA_NOTE:-}" >>"$RESULTS"
  else
    FAILED=1
    note=${note//$'\t'/ }
    echo "   failed: $note" >&2
    printf '%s\t%s\t%s\tfailed\t-\t-\t-\t-\t-\t-\t-\t%s\n' "$id" "$label" "$group" "${note:0:300}" >>"$RESULTS"
  fi
  EXTRA_NOTE=""
  return "$rc"
}

# alternate AFTER -- ID LABEL GROUP OUTFILE BEFORE CMD... -- ID LABEL GROUP OUTFILE BEFORE CMD...:
# two measurements (arguments as for measure) whose runs alternate, first, second, first, ..., so
# that both see the same minutes of host noise, which moves a daemon's times by up to 20 % from
# one minute to the next. AFTER (a function, or none) runs after every run, on that run's row.
# Each measurement still gets one row in results.tsv (merge_runs); the one-run rows stay in
# $W/alt-1.tsv and $W/alt-2.tsv until the next call.
alternate() {
  local after=$1 first=() second=() r keep=$RESULTS runs=$RUNS
  shift 2
  while (($#)) && [[ $1 != -- ]]; do first+=("$1"); shift; done
  shift
  second=("$@")
  : >"$W/alt-1.tsv"
  : >"$W/alt-2.tsv"
  RUNS=1
  for ((r = 1; r <= runs; r++)); do
    RESULTS=$W/alt-run.tsv
    : >"$RESULTS"; measure "${first[@]}"; "$after"; cat "$RESULTS" >>"$W/alt-1.tsv"
    : >"$RESULTS"; measure "${second[@]}"; "$after"; cat "$RESULTS" >>"$W/alt-2.tsv"
  done
  RUNS=$runs RESULTS=$keep
  merge_runs "$W/alt-1.tsv" >>"$RESULTS"
  merge_runs "$W/alt-2.tsv" >>"$RESULTS"
}
# merge_runs FILE: one results row from the one-run rows of a measurement: median wall (with the
# fastest and slowest), largest peak RSS, the last run's bytes, median CPU times; the first failed
# row instead when a run failed
merge_runs() {
  python3 - "$1" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
bad = [r for r in rows if r[3] != "ok"]
if bad:
    print("\t".join(bad[0]))
if bad or not rows:
    sys.exit(0)
walls = [float(r[4]) for r in rows]
med = lambda i: f"{statistics.median(float(r[i]) for r in rows):.2f}"
print("\t".join(rows[0][:3] + ["ok", f"{statistics.median(walls):g}",
                 str(max(int(r[5]) for r in rows)), rows[-1][6], f"{min(walls):g}",
                 f"{max(walls):g}", med(9), med(10), rows[-1][11]]))
PY
}

# --- 2. the image set ------------------------------------------------------------------------
# mixed_tree DIR MB SEED: MB MiB of application-like files: 35% incompressible blobs (media,
# archives, compiled assets), 15% base64 text (minified/encoded assets), 40% log/JSON-like
# text in large files and 10% of it as many ~6 KiB source-like files. TEXT_BYTES names
# another text generator (big.sh repeats a cached one).
mixed_tree() {
  local dir=$1 kb=$(($2 * 1024)) seed=$3 left n i=0
  local rnd=$((kb * 35 / 100)) enc=$((kb * 15 / 100)) small=$((kb * 10 / 100))
  local txt=$((kb - rnd - enc - small))
  mkdir -p "$dir/bin" "$dir/assets" "$dir/share" "$dir/src"
  left=$rnd
  while ((left > 0)); do
    n=$((left < 32768 ? left : 32768))
    head -c $((n * 1024)) /dev/urandom >"$dir/bin/blob$i.bin"
    left=$((left - n)) i=$((i + 1))
  done
  head -c $((enc * 1024 * 3 / 4)) /dev/urandom | base64 -w 120 >"$dir/assets/bundle.min.js"
  "${TEXT_BYTES:-text_bytes}" "$txt" "$seed" | split -d -a 3 -b 64M - "$dir/share/events-"
  "${TEXT_BYTES:-text_bytes}" "$small" "$((seed + 7))" | split -d -a 6 -C 6k - "$dir/src/mod-"
}
# text_bytes KB SEED: KB KiB of log/JSON-like lines (compresses about 4-6x with gzip).
text_bytes() {
  awk -v kb="$1" -v seed="$2" 'BEGIN {
    srand(seed); total = kb * 1024; n = 0
    split("GET POST PUT DELETE PATCH", m, " "); split("orders users items carts payments search", s, " ")
    split("200 200 200 201 204 304 400 404 500", st, " ")
    while (n < total) {
      line = sprintf("{\"ts\":\"2026-11-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"info\",\"svc\":\"%s\",\"method\":\"%s\",\"path\":\"/api/v1/%s/%d\",\"status\":%s,\"dur_ms\":%.1f,\"req\":\"%08x%08x\"}",
        1 + int(rand() * 27), int(rand() * 24), int(rand() * 60), int(rand() * 60), int(rand() * 1000),
        s[1 + int(rand() * 6)], m[1 + int(rand() * 5)], s[1 + int(rand() * 6)], int(rand() * 100000),
        st[1 + int(rand() * 9)], rand() * 250, int(rand() * 2147483647), int(rand() * 2147483647))
      print line; n += length(line) + 1
    }
  }' | head -c $(($1 * 1024))
}

BASE_DESC=""
if ((TINY)); then
  log "tiny mode: generated root filesystem"
  R=$W/rootfs
  mkdir -p "$R/etc" "$R/usr/bin" "$R/tmp"
  printf 'PRETTY_NAME="bench tiny rootfs"\nID=bench\n' >"$R/etc/os-release"
  mixed_tree "$R/usr/lib/base" 3 11
  tar -C "$R" --numeric-owner -cf "$W/rootfs.tar" .
  ROOTFS_TAR=$W/rootfs.tar
  BASE_DESC="generated 3 MiB root filesystem (tiny mode)"
else
  # debootstrap once, cached in $CACHE (scripts/setup.sh; scripts/package.sh --check uses it too)
  ROOTFS_TAR=$(setup_bookworm_tar "$CACHE") || exit 1
  BASE_DESC="debootstrap --variant=minbase bookworm (from the machine's apt mirror), packages and apt lists removed"
fi

log "source daemon: debian:bench, runtime:bench, app:1, app:1-rebuild, app:2, app:2-hotfix"
"${S[@]}" import -c 'CMD ["/bin/sh"]' "$ROOTFS_TAR" debian:bench >/dev/null || exit 1
build() { # build TAG CONTEXT DOCKERFILE-TEXT
  printf '%b' "$3" >"$2/Dockerfile"
  DOCKER_BUILDKIT=0 "${S[@]}" build -q -t "$1" "$2" >"$W/logs/build-$1.log" 2>&1 ||
    { echo "error: docker build $1 failed:" >&2; cat "$W/logs/build-$1.log" >&2; exit 1; }
}
if ((BIG)); then
  # shellcheck source=scripts/bench/big.sh
  . scripts/bench/big.sh
  big_series
  exit $?
fi
mixed_tree "$W/ctx/runtime/runtime" "$RUNTIME_MB" 21
build runtime:bench "$W/ctx/runtime" 'FROM debian:bench\nCOPY runtime /opt/runtime\nENV PATH=/opt/runtime/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
mixed_tree "$W/ctx/app1/app" "$APP_MB" 31
build app:1 "$W/ctx/app1" 'FROM runtime:bench\nCOPY app /srv/app\nWORKDIR /srv/app\nCMD ["/opt/runtime/bin/start"]\n'
# app:1-rebuild: the same application tree with one small file changed (the --delta case)
f=$(find "$W/ctx/app1/app/src" -type f | sort | head -n 1)
printf 'rebuilt: one changed line\n' >>"$f"
build app:1-rebuild "$W/ctx/app1" 'FROM runtime:bench\nCOPY app /srv/app\nWORKDIR /srv/app\nCMD ["/opt/runtime/bin/start"]\n'
rm -rf "$W/ctx/app1"
mixed_tree "$W/ctx/app2/app" "$APP_MB" 41
build app:2 "$W/ctx/app2" 'FROM runtime:bench\nCOPY app /srv/app\nWORKDIR /srv/app\nCMD ["/opt/runtime/bin/start"]\n'
rm -rf "$W/ctx/app2"
mkdir -p "$W/ctx/hotfix/fix"
text_bytes 256 51 >"$W/ctx/hotfix/fix/config.json"
head -c $((512 * 1024)) /dev/urandom >"$W/ctx/hotfix/fix/libpatch.so"
build app:2-hotfix "$W/ctx/hotfix" 'FROM app:2\nCOPY fix /srv/app/fix\n'
rm -rf "$W/ctx"

IMG=app:2-hotfix OLD=app:1
log "air-gapped daemon gets debian:bench, runtime:bench and $OLD"
"${S[@]}" save debian:bench runtime:bench "$OLD" | "${A[@]}" load >/dev/null || exit 1
SRC_ID=$("${S[@]}" image inspect -f '{{.Id}}' "$IMG")

mapfile -t OLD_LAYERS < <("${S[@]}" image inspect -f '{{range .RootFS.Layers}}{{println .}}{{end}}' "$OLD" | sed '/^$/d')
mapfile -t NEW_LAYERS < <("${S[@]}" image inspect -f '{{range .RootFS.Layers}}{{println .}}{{end}}' "$IMG" | sed '/^$/d')

# --- 3. measurements -------------------------------------------------------------------------
O=$W/out
SH="${S[*]}"
log "warming the page cache (one untimed docker save)"
"${S[@]}" save "$IMG" >/dev/null

measure raw "docker save > /dev/null" save - none /bin/bash -o pipefail -c "$SH save $IMG >/dev/null"
RAW_BYTES=$("${S[@]}" save "$IMG" | wc -c)
awk -F'\t' -v OFS='\t' -v b="$RAW_BYTES" '$1 == "raw" { $7 = b } 1' "$RESULTS" >"$RESULTS.t" && mv "$RESULTS.t" "$RESULTS"

measure gzip "docker save | gzip" save "$O/full.tar.gz" none /bin/bash -o pipefail -c "$SH save $IMG | gzip >$O/full.tar.gz"
rm -f "$O/full.tar.gz"
measure pigz "docker save | pigz" save "$O/full.tar.gz" none /bin/bash -o pipefail -c "$SH save $IMG | pigz >$O/full.tar.gz"
rm -f "$O/full.tar.gz"
measure zstd "docker save | zstd -T0" save "$O/full.tar.zst" none /bin/bash -o pipefail -c "$SH save $IMG | zstd -q -T0 >$O/full.tar.zst"
rm -f "$O/full.tar.zst"

KEY_ARGS=() LOAD_KEY=(--allow-unsigned)
if [[ -z $BUILD_NOTE ]] && "$SAVE" keygen -o "$W/bench" --no-password >"$W/logs/keygen.log" 2>&1; then
  KEY_ARGS=(--sign-key "$W/bench.key") LOAD_KEY=(--key "$W/bench.pub")
fi
for c in gzip zstd none; do
  EXTRA_NOTE="-e $OLD${KEY_ARGS[*]:+, signed}"
  measure "ps-$c" "partial-save --compression $c" partial "$O/bundle-$c" none \
    "$SAVE" -H "$source_HOST" -i "$IMG" -e "$OLD" --compression "$c" -o "$O/bundle-$c" --force "${KEY_ARGS[@]}"
done
measure inventory "partial-load inventory (air-gapped side)" partial "$O/have.json" none \
  "$LOAD" inventory -H "$airgap_HOST" -o "$O/have.json"
EXTRA_NOTE="--have inventory"
measure ps-have "partial-save --have (gzip)" partial "$O/bundle-have" none \
  "$SAVE" -H "$source_HOST" -i "$IMG" --have "$O/have.json" -o "$O/bundle-have" --force "${KEY_ARGS[@]}"

# gzip speed against the raw save, in alternating rounds: scripts/bench/speed.sh
# shellcheck source=scripts/bench/speed.sh
. scripts/bench/speed.sh
speed_series

# "new layers compressed with gzip -6": the layers of $IMG that $OLD lacks, from a docker save
log "new layers of $IMG against $OLD, each compressed with gzip -6"
"${S[@]}" save -o "$O/full.tar" "$IMG"
NEWGZ=$(python3 scripts/bench/new_layers_gzip.py "$O/full.tar" "${OLD_LAYERS[@]}") ||
  { echo "error: could not compute the new layers' gzip -6 size" >&2; NEWGZ="0 0 0"; FAILED=1; }
rm -f "$O/full.tar"
read -r NEW_COUNT NEW_RAW NEW_GZ <<<"$NEWGZ"
printf 'newgz\tnew layers, gzip -6 each (reference)\tref\tok\t-\t-\t%s\t%s of %s layers, %s bytes uncompressed\n' \
  "$NEW_GZ" "$NEW_COUNT" "${#NEW_LAYERS[@]}" "$NEW_RAW" >>"$RESULTS"

# loads: the same bundle file through partial-load load (verify + load) and a plain docker load;
# the image is removed from the air-gapped daemon before every run
remove_new() {
  "${A[@]}" image rm -f "$IMG" >/dev/null 2>&1 || true
  ! "${A[@]}" image inspect "$IMG" >/dev/null 2>&1
}
check_loaded() { # appends "same image ID" or a failure to the last result line
  local id
  id=$("${A[@]}" image inspect -f '{{.Id}}' "$IMG" 2>/dev/null)
  if [[ $id == "$SRC_ID" ]]; then
    sed -i '$ s/\t\([^\t]*\)$/\t\1 same image ID/' "$RESULTS"
  elif tail -n1 "$RESULTS" | grep -q $'\tok\t'; then
    sed -i '$ s/\tok\t/\tfailed\t/; $ s/\t\([^\t]*\)$/\t\1 image ID differs/' "$RESULTS"; FAILED=1
  fi
}
# partial-load and docker load of the same file alternate run by run (see alternate)
for c in gzip none zstd; do
  if [[ ! -s $O/bundle-$c ]]; then
    printf 'pl-%s\tpartial-load load (%s bundle)\tload\tfailed\t-\t-\t-\tno %s bundle (partial-save failed)\n' "$c" "$c" "$c" >>"$RESULTS"
    [[ $c == zstd ]] ||
      printf 'dl-%s\tdocker load (%s bundle)\tload\tfailed\t-\t-\t-\tno %s bundle (partial-save failed)\n' "$c" "$c" "$c" >>"$RESULTS"
    FAILED=1
  elif [[ $c == zstd ]]; then
    # Docker 20.10 cannot load zstd archives; partial-load decompresses them itself
    measure "pl-$c" "partial-load load ($c bundle)" load - remove_new \
      "$LOAD" load "$O/bundle-$c" "${LOAD_KEY[@]}" -H "$airgap_HOST"
    check_loaded
  else
    alternate check_loaded \
      -- "pl-$c" "partial-load load ($c bundle)" load - remove_new \
      "$LOAD" load "$O/bundle-$c" "${LOAD_KEY[@]}" -H "$airgap_HOST" \
      -- "dl-$c" "docker load ($c bundle)" load - remove_new \
      "${A[@]}" load -q -i "$O/bundle-$c"
  fi
done

# --- 3b. registries ----------------------------------------------------------------
if [[ -z $BUILD_NOTE ]]; then
  registry_section || FAILED=1
else
  printf 'reg-push\tpartial-load push\tregistry\tfailed\t-\t-\t-\t-\t-\t-\t-\t%s\n' "$BUILD_NOTE" >>"$RESULTS"
  FAILED=1
fi

# --- 3c. containerd (scripts/bench/containerd.sh) ---------------------------------------------
if [[ -z $BUILD_NOTE ]]; then
  containerd_section || FAILED=1
fi

# layer deltas: scripts/bench/delta.sh
# shellcheck source=scripts/bench/delta.sh
. scripts/bench/delta.sh
delta_series

# --- 4. report -------------------------------------------------------------------------------
log "writing $OUT/benchmarks.md and $OUT/benchmarks.png"
LAYERS_MD=$W/layers.md
{
  echo "| Image | Layers | Size (all layers) | Layers not on the air-gapped side |"
  echo "|---|---:|---:|---|"
  for t in debian:bench runtime:bench app:1 app:2 app:2-hotfix; do
    mapfile -t ls < <("${S[@]}" image inspect -f '{{range .RootFS.Layers}}{{println .}}{{end}}' "$t" | sed '/^$/d')
    new=$(printf '%s\n' "${ls[@]}" | grep -cvxF -f <(printf '%s\n' "${OLD_LAYERS[@]}"))
    size=$("${S[@]}" image inspect -f '{{.Size}}' "$t")
    # shellcheck disable=SC2016 # the backquotes are Markdown
    printf '| `%s` | %s | %s MiB | %s |\n' "$t" "${#ls[@]}" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" \
      "$([[ $t == app:2* ]] && echo "$new" || echo "none (present)")"
  done
} >"$LAYERS_MD"

CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
MACHINE="$(nproc) CPUs (${CPU:-unknown}), $MEM RAM, Linux $(uname -r), \
Docker $("${S[@]}" version -f '{{.Server.Version}}') daemon (storage driver $("${S[@]}" info -f '{{.Driver}}'), \
CLI $("${S[@]}" version -f '{{.Client.Version}}')), work folder on $(df -T "$W" | awk 'NR == 2 { print $2 }'); \
1-minute load average $LOADAVG0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end (other work on the machine adds noise)"
# the Scale section of a --big run is kept
[[ -f $OUT/benchmarks.md ]] && cp "$OUT/benchmarks.md" "$W/benchmarks.old.md"
python3 scripts/bench/report.py "$RESULTS" "$OUT/benchmarks.md" "$OUT/benchmarks.dat" \
  --machine "$MACHINE" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --command "$COMMAND" \
  --runs "$RUNS" --layers "$LAYERS_MD" --base "$BASE_DESC" --image "$IMG" --old "$OLD" \
  --app-mb "$APP_MB" --runtime-mb "$RUNTIME_MB" --tiny "$TINY" --paired "$W/paired.tsv" --commit "$(git rev-parse --short HEAD 2>/dev/null)" || FAILED=1
[[ -f $W/benchmarks.old.md ]] && { python3 scripts/bench/scale.py --keep "$W/benchmarks.old.md" "$OUT/benchmarks.md" || FAILED=1; }
if command -v gnuplot >/dev/null; then
  gnuplot -e "datafile='$OUT/benchmarks.dat'; outfile='$OUT/benchmarks.png'" scripts/bench/chart.gp \
    2>"$W/logs/gnuplot.log" || { echo "warning: gnuplot failed:" >&2; cat "$W/logs/gnuplot.log" >&2; }
fi
rm -f "$OUT/benchmarks.dat"

echo
sed -n '/^## Results/,/^## Image set/p' "$OUT/benchmarks.md" | sed '$d'
if ((FAILED)); then echo "some steps failed: see the table ($OUT/benchmarks.md)" >&2; exit 1; fi
