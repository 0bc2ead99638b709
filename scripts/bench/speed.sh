# shellcheck shell=bash
# `scripts/bench.sh`: the gzip speed series. Sourced by bench.sh after the saves (uses
# its measure, alternate, build, mixed_tree, S, O, W, IMG, OLD, SAVE, KEY_ARGS, RUNS, APP_MB, ...).
#
# The speed targets compare `partial-save` with the raw `docker save`, and most of the raw save's
# time on the graphdriver store is the export the daemon stages before its first byte. Host noise
# moves that staging by up to a second from one minute to the next, which is as much as the
# difference being measured. So here the raw save and `partial-save` (gzip) alternate, round by
# round, and the ratio reported is the median of the rounds' ratios. Two sets: $IMG against $OLD
# (the bench set, 65 % new) and app:1-plus against app:1 (app:1 plus one new layer of
# application files, about 20 % new). The staging time is read once per set (time to the first
# byte of a `docker save`), and `docker save | gzip` of the second set runs once.
# Writes $W/paired.tsv: set id, image, old image, new share, staging s, stream s, then the
# rounds as raw:partial wall pairs, then the `docker save | gzip` wall ("-" when not run). The
# measurements also get their rows in results.tsv (group "speed", not in the tables).

SPEED_ROUNDS=$((RUNS < 5 ? 5 : RUNS))
((TINY)) && SPEED_ROUNDS=$RUNS
PLUS_MB=${BENCH_PLUS_MB:-$((APP_MB * 3 / 8))}

# new_share IMAGE OLD: the share of IMAGE's layer bytes that OLD lacks, in percent, from the plan
# of a dry run
new_share() {
  "$SAVE" -H "$source_HOST" -i "$1" -e "$2" --dry-run --json 2>/dev/null | python3 -c '
import json, sys
p = json.load(sys.stdin)
new, total = p["bytes_carried"], p["bytes_carried"] + p["bytes_left_out"]
print(round(100 * new / total) if total else 0)'
}

# paired_set ID IMAGE OLD [gzip]: alternating rounds (bench.sh's alternate, whose one-run rows
# give the pairs); appends one line to paired.tsv
paired_set() {
  local id=$1 img=$2 old=$3 with_gzip=${4:-} runs=$RUNS first total gz=- share pairs
  log "speed series ($id): $img against $old, $SPEED_ROUNDS alternating rounds"
  "${S[@]}" save "$img" >/dev/null # warm the page cache
  read -r first total < <("${S[@]}" save "$img" | python3 scripts/bench/first_byte.py "$(date +%s.%N)")
  RUNS=$SPEED_ROUNDS
  alternate none \
    -- "sp-raw-$id" "docker save $img > /dev/null" speed - none \
    /bin/bash -o pipefail -c "$SH save $img >/dev/null" \
    -- "sp-ps-$id" "partial-save -i $img -e $old (gzip)" speed "$O/bundle-speed" none \
    "$SAVE" -H "$source_HOST" -i "$img" -e "$old" -o "$O/bundle-speed" --force "${KEY_ARGS[@]}"
  RUNS=$runs
  rm -f "$O/bundle-speed"*
  # raw:partial wall of each round, from the one-run rows alternate kept
  pairs=$(paste -d: <(awk -F'\t' '{ print ($4 == "ok" ? $5 : "-") }' "$W/alt-1.tsv") \
    <(awk -F'\t' '{ print ($4 == "ok" ? $5 : "-") }' "$W/alt-2.tsv") | grep -E '^[0-9.]+:[0-9.]+$' | tr '\n' ' ')
  if [[ -n $with_gzip ]]; then
    RUNS=1
    measure "sp-gzip-$id" "docker save $img | gzip" speed "$O/speed.tar.gz" none \
      /bin/bash -o pipefail -c "$SH save $img | gzip >$O/speed.tar.gz" &&
      gz=$(tail -n1 "$RESULTS" | cut -f5)
    RUNS=$runs
    rm -f "$O/speed.tar.gz"
  fi
  share=$(new_share "$img" "$old")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$img" "$old" "$share" "$first" \
    "$(awk -v a="$first" -v b="$total" 'BEGIN { printf "%.3f", b - a }')" "${pairs% }" "$gz" >>"$W/paired.tsv"
}

speed_series() {
  : >"$W/paired.tsv"
  paired_set bench "$IMG" "$OLD"
  log "app:1-plus: app:1 and a new layer of $PLUS_MB MiB of application files"
  mixed_tree "$W/ctx/plus/plus" "$PLUS_MB" 61
  build app:1-plus "$W/ctx/plus" 'FROM app:1\nCOPY plus /srv/plus\n'
  rm -rf "$W/ctx/plus"
  paired_set few app:1-plus app:1 gzip
}
