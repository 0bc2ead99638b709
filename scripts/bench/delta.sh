# shellcheck shell=bash
# `scripts/bench.sh`: the layer delta measurements. Sourced by bench.sh after the
# loads (uses its measure, remove_new, check_loaded, S, A, O, IMG, OLD, SAVE, LOAD, ...).
#
# Two cases, each exported with and without --delta against $OLD and loaded on the air-gapped
# side (which holds $OLD): $IMG, whose new layers are unrelated to anything the destination
# holds (the delta must fall back: same size, bounded extra time), and app:1-rebuild, app:1's
# application tree copied again with one small file changed (the delta must be tiny).

delta_series() {
  local save_img=$IMG
  EXTRA_NOTE="-e $OLD --delta, unrelated new layers"
  measure ps-delta "partial-save --delta (gzip)" partial "$O/bundle-delta" none \
    "$SAVE" -H "$source_HOST" -i "$IMG" -e "$OLD" --delta -o "$O/bundle-delta" --force "${KEY_ARGS[@]}"
  if [[ -s $O/bundle-delta ]]; then
    measure pl-delta "partial-load load (--delta bundle, unrelated layers)" load - remove_new \
      "$LOAD" load "$O/bundle-delta" "${LOAD_KEY[@]}" -H "$airgap_HOST"
    check_loaded
  fi
  rm -f "$O/bundle-delta"*

  IMG=app:1-rebuild
  SRC_ID=$("${S[@]}" image inspect -f '{{.Id}}' "$IMG")
  EXTRA_NOTE="-e $OLD, one file of $OLD's application layer changed"
  measure ps-rebuild "partial-save of the rebuild (gzip)" delta "$O/bundle-rebuild" none \
    "$SAVE" -H "$source_HOST" -i "$IMG" -e "$OLD" -o "$O/bundle-rebuild" --force "${KEY_ARGS[@]}"
  EXTRA_NOTE="-e $OLD --delta"
  measure ps-rebuild-delta "partial-save --delta of the rebuild (gzip)" delta "$O/bundle-rebuild-delta" none \
    "$SAVE" -H "$source_HOST" -i "$IMG" -e "$OLD" --delta -o "$O/bundle-rebuild-delta" --force "${KEY_ARGS[@]}"
  if [[ -s $O/bundle-rebuild ]]; then
    measure pl-rebuild "partial-load load (the rebuild)" delta - remove_new \
      "$LOAD" load "$O/bundle-rebuild" "${LOAD_KEY[@]}" -H "$airgap_HOST"
    check_loaded
  fi
  if [[ -s $O/bundle-rebuild-delta ]]; then
    measure pl-rebuild-delta "partial-load load (the rebuild, --delta bundle)" delta - remove_new \
      "$LOAD" load "$O/bundle-rebuild-delta" "${LOAD_KEY[@]}" -H "$airgap_HOST"
    check_loaded
  fi
  rm -f "$O/bundle-rebuild"*
  IMG=$save_img
  SRC_ID=$("${S[@]}" image inspect -f '{{.Id}}' "$IMG")
}
