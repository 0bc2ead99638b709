# Registry section of scripts/bench.sh (sourced after the loads; uses its W, O, S, SAVE, LOAD, IMG,
# OLD, KEY_ARGS, LOAD_KEY, RESULTS, measure, log). Private `docker-registry serve` processes on
# 127.0.0.1 with filesystem storage under the work folder (never the packaged service):
#   - registry "reg" is seeded with $OLD by `docker push` from the source daemon; the bench bundle
#     ($IMG against $OLD, gzip) is pushed into it by `partial-load push` under a fresh prefix per
#     run (its base layers are mounted from the seeded repository, its carried layers uploaded);
#   - registry "regs" is emptied before every run of `skopeo copy docker-archive:FULL.tar`, FULL.tar
#     being a raw `docker save` of $IMG: the whole image goes up, as without a partial bundle;
#   - then $IMG is `docker push`ed into "reg" too and `partial-save -i docker://…/$IMG -e
#     docker://…/$OLD` reads it from there, against `partial-save -i $IMG -e $OLD` on the daemon
#     (the ps-gzip row);
#   - the whole $IMG read from "reg" with nothing excluded: `partial-save -i docker://…/$IMG`
#     against `skopeo copy docker://…/$IMG oci:DIR` (issue 20: with nothing recompressed, the
#     export from a registry takes no longer than skopeo's copy of the same image).
# Bytes uploaded are the growth of the registry's blob storage (the sum of its blobs' sizes): a
# blob uploaded twice is stored once, so for our push it is what the first run added.

REGISTRIES=()

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME [PORT]: serves $W/NAME/data on 127.0.0.1:PORT (default: a free port); sets
# NAME_ADDR. Its log (with the access log) is appended to $W/logs/NAME.log.
start_registry() {
  local name=$1 port=${2:-$(free_port)} dir=$W/$1 i
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: partial-bench
EOF
  docker-registry serve "$dir/config.yml" >>"$W/logs/$name.log" 2>&1 &
  echo $! >"$dir/pid"
  REGISTRIES+=("$dir")
  printf -v "${name}_ADDR" '127.0.0.1:%s' "$port"
  for ((i = 0; i < 150; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "error: docker-registry $name did not start; its log:" >&2
  tail -n 20 "$W/logs/$name.log" >&2
  return 1
}

# stop_registry NAME: kills the registry this script started as NAME (by its pid).
stop_registry() {
  local pid
  pid=$(cat "$W/$1/pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -f "$W/$1/pid"
}

stop_registries() {
  local dir
  for dir in "${REGISTRIES[@]}"; do stop_registry "$(basename "$dir")"; done
  REGISTRIES=()
}

# blob_bytes NAME: the bytes of every blob the registry stores.
blob_bytes() {
  find "$W/$1/data/docker/registry/v2/blobs" -type f -name data -printf '%s\n' 2>/dev/null |
    awk '{ s += $1 } END { printf "%d\n", s }'
}

# set_bytes ID BYTES: puts BYTES in the bytes column of result ID.
set_bytes() {
  awk -F'\t' -v OFS='\t' -v id="$1" -v b="$2" '$1 == id && $4 == "ok" { $7 = b } 1' "$RESULTS" >"$RESULTS.t" &&
    mv "$RESULTS.t" "$RESULTS"
}

# set_note ID TEXT: replaces the note (last column) of result ID.
set_note() {
  awk -F'\t' -v OFS='\t' -v id="$1" -v n="$2" '$1 == id { $NF = n } 1' "$RESULTS" >"$RESULTS.t" &&
    mv "$RESULTS.t" "$RESULTS"
}

registry_section() {
  local push_n=0 before tag=${IMG#*:} repo=${IMG%%:*} uploaded carried
  log "registries: private docker-registry processes under $W"
  start_registry reg || { FAILED=1; return 1; }
  start_registry regs || { FAILED=1; return 1; }
  # shellcheck disable=SC2154 # set by start_registry
  log "seeding $reg_ADDR with $OLD (docker push, untimed)"
  if ! { "${S[@]}" tag "$OLD" "$reg_ADDR/$OLD" && "${S[@]}" push "$reg_ADDR/$OLD"; } >"$W/logs/seed-push.log" 2>&1; then
    echo "error: docker push $OLD failed:" >&2; tail -n 5 "$W/logs/seed-push.log" >&2
    FAILED=1; return 1
  fi

  # partial-load push of the bench bundle, under a fresh prefix each run
  next_prefix() { push_n=$((push_n + 1)); echo "push$push_n" >"$W/push-prefix"; }
  cat >"$W/push.sh" <<EOF
#!/bin/bash
p=\$(cat "$W/push-prefix")
exec "$LOAD" push "$O/bundle-gzip" ${LOAD_KEY[*]} --to "$reg_ADDR/\$p" --state "$W/push-state-\$p.json" --json
EOF
  chmod +x "$W/push.sh"
  before=$(blob_bytes reg)
  carried=$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["totals"]
print("%d carried layer(s), %.1f MiB as tars" % (t["layers_carried"], t["bytes_carried"] / 1048576))' \
    "$O/bundle-gzip.manifest.json" 2>/dev/null)
  if [[ ! -s $O/bundle-gzip ]]; then
    printf 'reg-push\tpartial-load push (gzip bundle)\tregistry\tfailed\t-\t-\t-\tno gzip bundle (partial-save failed)\n' >>"$RESULTS"
    FAILED=1
  elif measure reg-push "partial-load push (gzip bundle, into a registry holding $OLD)" registry - next_prefix "$W/push.sh"; then
    uploaded=$(python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))
print("%d blob(s) uploaded, %d mounted" % (o["uploaded_blobs"], o["mounted_blobs"]))' \
      "$W/logs/reg-push.out" 2>/dev/null)
    set_bytes reg-push "$(($(blob_bytes reg) - before))"
    set_note reg-push "${carried:+$carried: }${uploaded:-}"
  fi

  # skopeo copy of the whole image into an empty registry
  log "full archive of $IMG for skopeo (docker save, untimed)"
  "${S[@]}" save -o "$O/full.tar" "$IMG" || { FAILED=1; return 1; }
  empty_regs() {
    # shellcheck disable=SC2154
    local port=${regs_ADDR##*:}
    stop_registry regs && rm -rf "$W/regs/data" && start_registry regs "$port"
  }
  measure reg-skopeo "skopeo copy docker-archive:FULL.tar (whole image, empty registry)" registry - empty_regs \
    skopeo copy --quiet --dest-tls-verify=false "docker-archive:$O/full.tar" "docker://$regs_ADDR/$repo:$tag" &&
    set_bytes reg-skopeo "$(blob_bytes regs)"
  rm -f "$O/full.tar"

  # partial-save from the registry against partial-save from the daemon (ps-gzip)
  log "pushing $IMG into $reg_ADDR (docker push, untimed)"
  if ! { "${S[@]}" tag "$IMG" "$reg_ADDR/$IMG" && "${S[@]}" push "$reg_ADDR/$IMG"; } >"$W/logs/img-push.log" 2>&1; then
    echo "error: docker push $IMG failed:" >&2; tail -n 5 "$W/logs/img-push.log" >&2
    FAILED=1; return 1
  fi
  EXTRA_NOTE="-e docker://…/$OLD${KEY_ARGS[*]:+, signed}"
  measure reg-save "partial-save -i docker://REGISTRY/$IMG (gzip)" registry "$O/bundle-reg" none \
    "$SAVE" -i "docker://$reg_ADDR/$IMG" -e "docker://$reg_ADDR/$OLD" -o "$O/bundle-reg" --force "${KEY_ARGS[@]}"
  rm -f "$O/bundle-reg"*
  measure reg-save-full "partial-save -i docker://REGISTRY/$IMG (gzip, nothing excluded)" registry "$O/bundle-regf" none \
    "$SAVE" -i "docker://$reg_ADDR/$IMG" -o "$O/bundle-regf" --force "${KEY_ARGS[@]}"
  rm -f "$O/bundle-regf"*
  measure reg-skopeo-oci "skopeo copy docker://REGISTRY/$IMG oci:DIR (whole image)" registry - empty_oci \
    skopeo copy --quiet --src-tls-verify=false "docker://$reg_ADDR/$IMG" "oci:$O/skopeo-oci:img"
  rm -rf "$O/skopeo-oci"
  stop_registries
}

# Before each skopeo run: no layout left from the run before (skopeo would reuse its blobs).
empty_oci() { rm -rf "$O/skopeo-oci"; }
