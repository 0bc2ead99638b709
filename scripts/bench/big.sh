# shellcheck shell=bash
# `scripts/bench.sh --big`: how cost grows with the image. Sourced by bench.sh once the daemons
# run and debian:bench is imported (uses its measure, mixed_tree, log, S, A, W, SAVE, LOAD, ...).
#
# One image per size in BENCH_BIG_GIB: debian:bench plus one new layer of application files
# (35% random, 15% base64, 50% JSON-like text, 10% of it in ~6 KiB files), the destination holding
# debian:bench. Each step runs once: raw `docker save`, `partial-save` (gzip, -e debian:bench),
# `partial-load verify`, `load` and `rehydrate`. The table replaces the "Scale" section of
# $OUT/benchmarks.md. Each point is removed before the next (disk: about 4.5x its size free).

# big_text KB SEED: like text_bytes, but only the first 256 MiB are generated (awk is slow) and
# then repeated; gzip sees 32 KiB at a time, so its speed and ratio are those of fresh text.
big_text() {
  local kb=$1 cache=$W/big-text.cache
  if ((kb <= 262144)); then text_bytes "$kb" "$2"; return; fi
  [[ -s $cache ]] || text_bytes 262144 "$2" >"$cache"
  while cat "$cache"; do :; done | head -c $((kb * 1024)) # cat ends the loop at SIGPIPE
}

# big_report: (re)writes the Scale section of $OUT/benchmarks.md from the points measured so far.
big_report() {
  python3 "$ROOT/scripts/bench/scale.py" "$RESULTS" "$scale" "$OUT/benchmarks.md" \
    --machine "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Docker $("${S[@]}" version -f '{{.Server.Version}}'); 1-minute load average $LOADAVG0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" \
    --command "$COMMAND" || FAILED=1
}

# huge_point: an entry over 8 GiB without the disk for one: a generated archive (huge_archive.py)
# whose only layer is 8.25 GiB of zeros stored as holes; partial-save --from-archive, verify
# --offline, and load into the destination when it has the disk for the unpacked file.
huge_point() {
  local O=$W/out P=bighuge ok="partial-save failed" avail id gib=${BENCH_HUGE_GIB:-8.25}
  log "an entry over 8 GiB: a generated archive whose layer is $gib GiB of zeros (holes on disk)"
  python3 "$ROOT/scripts/bench/huge_archive.py" "$O/huge.tar" "$gib" >"$W/logs/huge.log" 2>&1 ||
    { echo "error: huge_archive.py failed: $(tail -n1 "$W/logs/huge.log")" >&2; FAILED=1; return; }
  EXTRA_NOTE="--from-archive"
  if measure "$P-save" "partial-save --from-archive ($gib GiB layer)" big "$O/huge.tgz" none \
    "$SAVE" --from-archive "$O/huge.tar" -o "$O/huge.tgz" --force "${KEY_ARGS[@]}"; then
    measure "$P-verify" "partial-load verify --offline ($gib GiB layer)" big - none \
      "$LOAD" verify "$O/huge.tgz" "${LOAD_KEY[@]}" --offline
    ok="verified; not loaded (disk)"
    avail=$(df -Pm "$W" | awk 'NR == 2 { print $4 }')
    if ((avail > 20 * 1024)); then
      measure "$P-load" "partial-load load ($gib GiB layer)" big - none \
        "$LOAD" load "$O/huge.tgz" "${LOAD_KEY[@]}" -H "$airgap_HOST"
      id=$("${A[@]}" image inspect -f '{{.Id}}' huge:1 2>/dev/null)
      ok="image ID differs or missing after load"
      [[ -n $id && $id == "sha256:$(awk '{ print $2 }' "$W/logs/huge.log" | cut -d: -f2)" ]] && ok="same image ID"
      [[ $ok == same* ]] || FAILED=1
      "${A[@]}" image rm -f huge:1 >/dev/null 2>&1
    fi
  fi
  printf 'huge\t%s\t1\t-\t%s\t%s PAX size\n' "$(awk '{ print $4 }' "$W/logs/huge.log")" "$ok" \
    "$(awk '{ print $4 }' "$W/logs/huge.log")" >>"$scale"
  rm -f "$O/huge.tar" "$O/huge.tgz"*
}

big_series() {
  local points=${BENCH_BIG_GIB:-0.6 2.5 10} gib tag mb files need avail bundle id ok fmt
  local scale=$W/scale.tsv
  : >"$scale"
  KEY_ARGS=() LOAD_KEY=(--allow-unsigned)
  if [[ -z $BUILD_NOTE ]] && "$SAVE" keygen -o "$W/bench" --no-password >"$W/logs/keygen.log" 2>&1; then
    KEY_ARGS=(--sign-key "$W/bench.key") LOAD_KEY=(--key "$W/bench.pub")
  fi
  log "air-gapped daemon gets debian:bench"
  "${S[@]}" save debian:bench | "${A[@]}" load >/dev/null || return 1
  for gib in $points; do
    tag=big:$gib
    mb=$(awk -v g="$gib" 'BEGIN { printf "%d", g * 1024 - 111 }') # minus the base's 111 MiB
    need=$(awk -v g="$gib" 'BEGIN { printf "%d", g * 4.5 * 1024 }')
    avail=$(df -Pm "$W" | awk 'NR == 2 { print $4 }')
    if ((avail < need)); then
      echo "error: $gib GiB point skipped: $avail MiB free under $W, it needs about $need MiB" >&2
      printf '%s\t%s\tskipped: %s MiB free, ~%s MiB needed\n' "$gib" - "$avail" "$need" >>"$scale"
      FAILED=1
      continue
    fi
    log "scale $gib GiB: generating a ${mb} MiB application layer"
    TEXT_BYTES=big_text mixed_tree "$W/ctx/big/app" "$mb" 71
    files=$(find "$W/ctx/big" -type f | wc -l)
    log "scale $gib GiB: docker build $tag ($files files)"
    build "$tag" "$W/ctx/big" 'FROM debian:bench\nCOPY app /srv/app\nCMD ["/bin/sh"]\n'
    rm -rf "$W/ctx/big" "$W/big-text.cache"
    local P=big$gib O=$W/out
    measure "$P-raw" "docker save > /dev/null ($gib GiB)" big - none \
      /bin/bash -o pipefail -c "${S[*]} save $tag | wc -c >$O/raw.count"
    EXTRA_NOTE="-e debian:bench"
    ok="partial-save failed"
    if measure "$P-save" "partial-save gzip ($gib GiB)" big "$O/big.tgz" none \
      "$SAVE" -H "$source_HOST" -i "$tag" -e debian:bench -o "$O/big.tgz" --force "${KEY_ARGS[@]}"; then
      measure "$P-verify" "partial-load verify ($gib GiB)" big - none \
        "$LOAD" verify "$O/big.tgz" "${LOAD_KEY[@]}" -H "$airgap_HOST"
      measure "$P-load" "partial-load load ($gib GiB)" big - none \
        "$LOAD" load "$O/big.tgz" "${LOAD_KEY[@]}" -H "$airgap_HOST"
      id=$("${A[@]}" image inspect -f '{{.Id}}' "$tag" 2>/dev/null)
      ok="image ID differs or missing after load"
      [[ -n $id && $id == "$("${S[@]}" image inspect -f '{{.Id}}' "$tag")" ]] && ok="same image ID"
      [[ $ok == same* ]] || FAILED=1
      measure "$P-rehydrate" "partial-load rehydrate ($gib GiB)" big "$O/full.tar" none \
        "$LOAD" rehydrate "$O/big.tgz" "${LOAD_KEY[@]}" -H "$airgap_HOST" -o "$O/full.tar" --force
    fi
    # how the biggest layer's size is written in its tar header (passed through from the daemon)
    fmt=$(python3 - "$O/full.tar" <<'EOF' 2>/dev/null
import sys, tarfile
big = max(tarfile.open(sys.argv[1]), key=lambda m: m.size)
how = "PAX size" if "size" in big.pax_headers else ("base-256" if big.size > 0o77777777777 else "octal")
print(f"{big.size} {how}")
EOF
)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$gib" "$("${S[@]}" image inspect -f '{{.Size}}' "$tag")" \
      "$files" "$(cat "$O/raw.count" 2>/dev/null)" "$ok" "${fmt:--}" >>"$scale"
    rm -f "$O/big.tgz"* "$O/full.tar" "$O/raw.count"
    "${S[@]}" image rm -f "$tag" >/dev/null 2>&1
    "${A[@]}" image rm -f "$tag" >/dev/null 2>&1
    big_report # after every point, so that an interrupted series still leaves its table
  done
  huge_point
  big_report
  sed -n '/^## Scale/,/^## /p' "$OUT/benchmarks.md" | sed '$d'
  return "$FAILED"
}
