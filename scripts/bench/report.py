#!/usr/bin/env python3
"""report.py RESULTS.tsv OUT.md OUT.dat [options]: the Markdown report and the chart data of
scripts/bench.sh. RESULTS.tsv lines: id, label, group, status, wall s, peak RSS KiB, bytes, note
("-" when not measured). Standard library only."""
import argparse
import csv
import sys

MIB = 1024 * 1024


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt_s(v):
    return "–" if v is None else f"{v:.2f}"


def fmt_ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def fmt_bytes(v):
    if v is None:
        return "–"
    return f"{v / MIB:,.1f} MiB" if v >= MIB else f"{v / 1024:,.1f} KiB"


def cell(text):
    """Table cell text: GitHub tables need | escaped, even inside code spans."""
    return str(text).replace("|", "\\|")


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if not n else xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def read_paired(path):
    """The speed series (scripts/bench/speed.sh): one dict per set, with its alternating rounds
    as (raw save, partial-save) wall pairs."""
    sets = []
    try:
        f = open(path, newline="")
    except OSError:
        return sets
    with f:
        for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(r) < 8:
                continue
            rounds = []
            for pair in r[6].split():
                raw, ps = (num(x) for x in pair.split(":"))
                if raw and ps:
                    rounds.append((raw, ps))
            sets.append(dict(id=r[0], image=r[1], old=r[2], new=num(r[3]), staging=num(r[4]),
                             stream=num(r[5]), rounds=rounds, gzip=num(r[7]),
                             ratio=median([ps / raw for raw, ps in rounds])))
    return sets


def speed_section(w, paired):
    w("### Speed against the raw save\n")
    w("The raw save and `partial-save` (gzip, signed) alternate, round by round, and the ratio is "
      "the median of the rounds' ratios: on this daemon (graphdriver store) most of the raw save "
      "is the export the daemon stages before its first byte, and host noise moves that staging "
      "by up to a second from one minute to the next. **Staging** is the time to the first byte "
      "of one `docker save`, **stream** the rest of it. `partial-save` cannot start before the "
      "first byte either, so what it adds is all in the stream part, where the daemon's tar "
      "stream, the hashing and the compression share the cores.\n")
    w("| Set | New | Raw save: staging + stream (s) | Raw save (s, median) | `partial-save` gzip (s, median) "
      "| Ratio (median of rounds) | Rounds (raw / partial-save, s) | `docker save \\| gzip` (s) |")
    w("|---|---:|---:|---:|---:|---:|---|---:|")
    for p in paired:
        rounds = ", ".join(f"{raw:.2f} / {ps:.2f}" for raw, ps in p["rounds"])
        raw = median([r for r, _ in p["rounds"]])
        ps = median([q for _, q in p["rounds"]])
        stage = "–" if p["staging"] is None else f"{p['staging']:.2f} + {p['stream']:.2f}"
        gz = "–" if p["gzip"] is None else (f"{p['gzip']:.2f} ({p['gzip'] / ps:.1f}× `partial-save`)"
                                            if ps else f"{p['gzip']:.2f}")
        ratio = "–" if p["ratio"] is None else f"{p['ratio']:.2f}×"
        w(f"| `{p['image']}` against `{p['old']}` | {p['new']:.0f} % | {stage} | {fmt_s(raw)} "
          f"| {fmt_s(ps)} | {ratio} | {rounds} | {gz} |")
    w("")


def speed_checks(check, paired):
    """The gzip speed targets: gzip ≤ 1.3× the raw save on the bench set, ≤ 1.15× and ≥ 5×
    faster than `docker save | gzip` on the set with ≤ 30 % new."""
    for p in paired:
        bound = 1.3 if p["id"] == "bench" else 1.15
        what = "the bench set" if p["id"] == "bench" else f"a set with ≤ 30 % new (`{p['image']}`, {p['new']:.0f} %)"
        r = p["ratio"]
        check(f"`partial-save` (gzip) ≤ {bound}× the raw save on {what}, alternating rounds",
              "–" if r is None else f"{r:.2f}× (median of {len(p['rounds'])} rounds)",
              None if r is None else r <= bound)
        if p["gzip"] is not None:
            ps = median([q for _, q in p["rounds"]])
            check(f"`partial-save` (gzip) ≥ 5× faster than `docker save \\| gzip` on {what}",
                  "–" if not ps else f"{p['gzip']:.2f} s / {ps:.2f} s = {p['gzip'] / ps:.1f}× faster",
                  None if not ps else p["gzip"] >= 5 * ps)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("md")
    ap.add_argument("dat")
    for opt in ("machine", "date", "command", "runs", "layers", "base", "image", "old",
                "app-mb", "runtime-mb", "tiny", "commit", "paired"):
        ap.add_argument("--" + opt, default="")
    a = ap.parse_args()

    rows = {}
    order = []
    with open(a.results, newline="") as f:
        for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            r += [""] * (8 - len(r))
            rid, label, group, status, wall, rss, nbytes = r[:7]
            note = r[-1]  # 8 columns, or 12 with the range and CPU times before the note
            wmin, wmax, cpu, dcpu = r[7:11] if len(r) >= 12 else (None,) * 4
            rows[rid] = dict(id=rid, label=label, group=group, ok=status == "ok",
                             wall=num(wall), rss=None if num(rss) is None else num(rss) / 1024,
                             bytes=num(nbytes), note=note.strip(), wmin=num(wmin),
                             wmax=num(wmax), cpu=num(cpu), dcpu=num(dcpu))
            order.append(rid)

    def get(rid, key):
        r = rows.get(rid)
        return r[key] if r and r["ok"] else None

    raw_wall, raw_bytes = get("raw", "wall"), get("raw", "bytes")
    paired = read_paired(a.paired)

    def wall(r):  # median, with the fastest and slowest run when there were several
        if r["wall"] is None:
            return "–"
        if r["wmin"] is None or r["wmin"] == r["wmax"]:
            return fmt_s(r["wall"])
        return f"{fmt_s(r['wall'])} <sub>({r['wmin']:.2f}–{r['wmax']:.2f})</sub>"

    def cpus(r):
        return f"{fmt_s(r['cpu'])} | {fmt_s(r['dcpu'])}"

    out = []
    w = out.append
    w("# Benchmarks\n")
    w("Measured by `scripts/bench.sh`: the new version of an application shipped to an "
      f"air-gapped Docker host that already has the old one. The image sent is `{a.image}`; the "
      f"destination has `{a.old}` and its base. Side by side: the plain Docker ways (`docker save` "
      "raw, through gzip, pigz and zstd) and `partial-save`, then loading the same bundle file with "
      "`partial-load load` (verify + load) and with a plain `docker load`.\n")
    if a.tiny == "1":
        w("> **Tiny mode** (a few MiB, generated base): this run only shows that the benchmark works; "
          "its timings say nothing about the targets.\n")
    w(f"- **When**: {a.date}" + (f", commit `{a.commit}`" if a.commit else ""))
    w(f"- **Machine**: {a.machine}")
    w(f"- **Command**: `{a.command}` (as root; {a.runs} run(s) per measurement: median wall time "
      "with the fastest and slowest run, median CPU times, largest peak RSS)")
    w(f"- **Image set**: base {a.base}; runtime layer {a.runtime_mb} MiB; application layers "
      f"{a.app_mb} MiB each (35% random, 15% base64 text, 50% JSON-like text in large and ~6 KiB "
      "files); a hotfix layer of 0.75 MiB.\n")

    w("## Results\n")
    w("### Saving the new version\n")
    w("| Method | Wall (s) | vs raw save | CPU client (s) | CPU daemons (s) | Peak RSS (MiB) "
      "| Bytes written | vs raw save | Status | Notes |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for rid in order:
        r = rows[rid]
        if r["group"] not in ("save", "partial", "ref"):
            continue
        if r["group"] == "ref":
            w(f"| {cell(r['label'])} | | | | | | {fmt_bytes(r['bytes'])} | {fmt_ratio(r['bytes'], raw_bytes)} "
              f"| {'ok' if r['ok'] else '**failed**'} | {cell(r['note'])} |")
            continue
        status = "ok" if r["ok"] else "**failed**"
        rss = "–" if r["rss"] is None else f"{r['rss']:.1f}"
        aux = rid == "inventory"  # not a way of saving: no ratios
        w(f"| `{cell(r['label'])}` | {wall(r)} | {'' if aux else fmt_ratio(r['wall'], raw_wall)} "
          f"| {cpus(r)} | {rss} | {fmt_bytes(r['bytes'])} | {'' if aux else fmt_ratio(r['bytes'], raw_bytes)} | {status} "
          f"| {cell(r['note'])} |")
    w("")
    w("### Loading the bundle on the air-gapped side\n")
    w("The image is removed from the air-gapped daemon before every run; after each run the loaded "
      "image ID is compared with the source's.\n")
    w("| Method | Wall (s) | vs `docker load` of the same file | CPU client (s) | CPU daemons (s) "
      "| Peak RSS (MiB) | Status | Notes |")
    w("|---|---:|---:|---:|---:|---:|---|---|")
    for rid in order:
        r = rows[rid]
        if r["group"] != "load":
            continue
        codec = rid.split("-", 1)[1]
        ref = get("pl-gzip", "wall") if rid == "pl-delta" else get("dl-" + codec, "wall")
        status = "ok" if r["ok"] else "**failed**"
        rss = "–" if r["rss"] is None else f"{r['rss']:.1f}"
        note = cell(r["note"])
        if rid == "pl-zstd":
            note = (note + "; " if note else "") + "Docker 20.10 cannot load zstd, so no plain load to compare"
        if rid == "pl-delta":
            note = (note + "; " if note else "") + "ratio against `partial-load load` of the gzip bundle"
        w(f"| `{cell(r['label'])}` | {wall(r)} | {fmt_ratio(r['wall'], ref) if rid.startswith('pl-') else '1.00×' if r['ok'] else '–'} "
          f"| {cpus(r)} | {rss} | {status} | {note} |")
    w("")

    if any(rows[rid]["group"] == "containerd" for rid in order):
        w("### Loading into containerd\n")
        w("A private containerd (scripts/bench/containerd.sh) whose namespace holds the base image; "
          "every run starts from that state (containerd restarted on a copy of its root), the two "
          "methods alternating.\n")
        w("| Method | Wall (s) | vs `ctr images import` | CPU client (s) | CPU dockerds (s) | Peak RSS (MiB) "
          "| Status | Notes |")
        w("|---|---:|---:|---:|---:|---:|---|---|")
        ref = get("ctrd-import", "wall")
        for rid in order:
            r = rows[rid]
            if r["group"] != "containerd":
                continue
            rss = "–" if r["rss"] is None else f"{r['rss']:.1f}"
            status = "ok" if r["ok"] else "**failed**"
            w(f"| `{cell(r['label'])}` | {wall(r)} | {fmt_ratio(r['wall'], ref) if r['ok'] else '–'} "
              f"| {cpus(r)} | {rss} | {status} | {cell(r['note'])} |")
        w("")

    w("### Layer deltas (`--delta`)\n")
    w("`app:1-rebuild` is `app:1` built again with one small file of its application tree changed; "
      "the air-gapped side holds `app:1`. Loads are checked for the source's image ID.\n")
    w("| Method | Wall (s) | Peak RSS (MiB) | Bundle | Status | Notes |")
    w("|---|---:|---:|---:|---|---|")
    for rid in order:
        r = rows[rid]
        if r["group"] != "delta":
            continue
        rss = "–" if r["rss"] is None else f"{r['rss']:.1f}"
        w(f"| `{cell(r['label'])}` | {wall(r)} | {rss} | {fmt_bytes(r['bytes'])} "
          f"| {'ok' if r['ok'] else '**failed**'} | {cell(r['note'])} |")
    w("")

    if any(rows[rid]["group"] == "registry" for rid in order):
        w("### Registries\n")
        w(f"Private `docker-registry` processes (distribution, filesystem storage in the work folder, "
          f"http on 127.0.0.1). `partial-load push` sends the gzip bundle into a registry holding "
          f"`{a.old}` (pushed there by `docker push`), under a fresh repository prefix each run: base "
          f"layers are mounted from `{a.old}`'s repository, carried layers compressed and uploaded. "
          f"`skopeo copy docker-archive:FULL.tar` (a raw `docker save` of `{a.image}`) sends the whole "
          f"image into an emptied registry each run. **Bytes** are what the registry's blob storage "
          f"grew by (a blob sent twice is stored once). `partial-save -i docker://…` reads "
          f"`{a.image}` as `docker push` stored it, against `{a.old}` in the same registry.\n")
        w("| Method | Wall (s) | CPU client (s) | Peak RSS (MiB) | Bytes uploaded / written | Status | Notes |")
        w("|---|---:|---:|---:|---:|---|---|")
        for rid in order:
            r = rows[rid]
            if r["group"] != "registry":
                continue
            status = "ok" if r["ok"] else "**failed**"
            rss = "–" if r["rss"] is None else f"{r['rss']:.1f}"
            w(f"| `{cell(r['label'])}` | {wall(r)} | {fmt_s(r['cpu'])} | {rss} "
              f"| {fmt_bytes(r['bytes'])} | {status} | {cell(r['note'])} |")
        w("")

    if paired:
        speed_section(w, paired)

    # target checks
    w("## Targets\n")
    w("| Target | Measured | Result |")
    w("|---|---|---|")

    def check(name, measured, ok):
        res = "not measured" if ok is None else ("**pass**" if ok else "**FAIL**")
        w(f"| {name} | {measured} | {res} |")

    for c in ("gzip", "zstd", "none"):
        p = get("ps-" + c, "wall")
        check(f"`partial-save --compression {c}` wall ≤ 1.5× raw `docker save` to /dev/null",
              f"{fmt_s(p)} s vs {fmt_s(raw_wall)} s = {fmt_ratio(p, raw_wall)}",
              None if p is None or raw_wall is None else p <= 1.5 * raw_wall)
    p, g = get("ps-gzip", "wall"), get("gzip", "wall")
    check("`partial-save` (gzip) ≥ 5× faster than `docker save \\| gzip`",
          "–" if p is None or g is None or not p else f"{g:.2f} s / {p:.2f} s = {g / p:.1f}× faster",
          None if p is None or g is None else g >= 5 * p)
    speed_checks(check, paired)
    rss = [get(r, "rss") for r in order if r.startswith("ps-")]
    rss = [x for x in rss if x is not None]
    check("`partial-save` peak RSS ≤ 64 MiB (every run)",
          f"max {max(rss):.1f} MiB" if rss else "–", max(rss) <= 64 if rss else None)
    b, n = get("ps-gzip", "bytes"), get("newgz", "bytes")
    check("gzip bundle ≤ 1.10× the new layers compressed with `gzip -6`",
          "–" if b is None or not n else f"{fmt_bytes(b)} vs {fmt_bytes(n)} = {b / n:.3f}×",
          None if b is None or not n else b <= 1.10 * n)
    for c in ("gzip", "none"):
        p, d = get("pl-" + c, "wall"), get("dl-" + c, "wall")
        check(f"`partial-load load` ({c} bundle) ≤ 1.3× `docker load` of the same file",
              f"{fmt_s(p)} s vs {fmt_s(d)} s = {fmt_ratio(p, d)}",
              None if p is None or d is None else p <= 1.3 * d)
    rss = [get(r, "rss") for r in order if r.startswith("pl-")]
    rss = [x for x in rss if x is not None]
    check("`partial-load load` peak RSS ≤ 64 MiB (every run)",
          f"max {max(rss):.1f} MiB" if rss else "–", max(rss) <= 64 if rss else None)
    # layer deltas
    b, p = get("ps-delta", "bytes"), get("ps-gzip", "bytes")
    check("`--delta`, unrelated new layers: bundle ≤ 1.01× the bundle without `--delta`",
          "–" if b is None or not p else f"{fmt_bytes(b)} vs {fmt_bytes(p)} = {b / p:.4f}×",
          None if b is None or not p else b <= 1.01 * p)
    d, p = get("ps-delta", "wall"), get("ps-gzip", "wall")
    check("`--delta`, unrelated new layers: export ≤ 2× without `--delta`",
          f"{fmt_s(d)} s vs {fmt_s(p)} s = {fmt_ratio(d, p)}",
          None if d is None or p is None else d <= 2 * p)
    d, p = get("pl-delta", "wall"), get("pl-gzip", "wall")
    check("`partial-load load` of a `--delta` bundle ≤ 2× a plain one",
          f"{fmt_s(d)} s vs {fmt_s(p)} s = {fmt_ratio(d, p)}",
          None if d is None or p is None else d <= 2 * p)
    b, p = get("ps-rebuild-delta", "bytes"), get("ps-rebuild", "bytes")
    check("`--delta`, one file of the application layer changed: bundle ≤ 1 MB",
          "–" if b is None else f"{fmt_bytes(b)} (without `--delta`: {fmt_bytes(p)})",
          None if b is None else b <= 1_000_000)
    if "ctrd-pl" in rows:
        p, k = get("ctrd-pl", "wall"), get("ctrd-import", "wall")
        check("`partial-load load --containerd` ≤ 1.3× `ctr images import` of a `docker save` archive",
              f"{fmt_s(p)} s vs {fmt_s(k)} s = {fmt_ratio(p, k)}",
              None if p is None or k is None else p <= 1.3 * k)
        r = get("ctrd-pl", "rss")
        check("`partial-load load --containerd` peak RSS ≤ 64 MiB (every run)",
              "–" if r is None else f"max {r:.1f} MiB", None if r is None else r <= 64)
    if "reg-push" in rows:
        p, k = get("reg-push", "wall"), get("reg-skopeo", "wall")
        w(f"| `partial-load push` wall vs `skopeo copy` of the whole image (no target) "
          f"| {fmt_s(p)} s vs {fmt_s(k)} s = {fmt_ratio(p, k)} | reported |")
        b, n, kb = get("reg-push", "bytes"), get("newgz", "bytes"), get("reg-skopeo", "bytes")
        check("`partial-load push` uploads the carried layers only: ≤ 1.10× the new layers "
              "compressed with `gzip -6` (+ 64 KiB for the config)",
              "–" if b is None or not n else f"{fmt_bytes(b)} vs {fmt_bytes(n)} = {b / n:.3f}× "
              f"(skopeo: {fmt_bytes(kb)})",
              None if b is None or not n else b <= 1.10 * n + 65536)
        r = get("reg-push", "rss")
        check("`partial-load push` peak RSS ≤ 64 MiB (every run)",
              "–" if r is None else f"max {r:.1f} MiB", None if r is None else r <= 64)
        p, d = get("reg-save", "wall"), get("ps-gzip", "wall")
        check("`partial-save -i docker://…` wall ≤ 1.2× `partial-save` from the daemon",
              f"{fmt_s(p)} s vs {fmt_s(d)} s = {fmt_ratio(p, d)}",
              None if p is None or d is None else p <= 1.2 * d)
        p, k = get("reg-save-full", "wall"), get("reg-skopeo-oci", "wall")
        check("`partial-save -i docker://…` of the whole image ≤ 1.0× `skopeo copy docker://… oci:DIR`",
              f"{fmt_s(p)} s vs {fmt_s(k)} s = {fmt_ratio(p, k)}",
              None if p is None or k is None else p <= 1.0 * k)
        r = get("reg-save-full", "rss")
        check("`partial-save -i docker://…` peak RSS ≤ 64 MiB (every run)",
              "–" if r is None else f"max {r:.1f} MiB", None if r is None else r <= 64)
    w("")

    w("## Image set\n")
    try:
        with open(a.layers) as f:
            w(f.read().rstrip("\n"))
    except OSError:
        w("(not recorded)")
    w("")
    w("## How it is measured\n")
    w("- Every command runs under `/usr/bin/time -f '%e %M %U %S'`: wall time (s), peak resident "
      "set size and CPU time (user + system) of the client processes. **CPU daemons** is the CPU "
      "time both private `dockerd`s (and the helpers they waited for, such as the untar of a load) "
      "used during the run, from `/proc/PID/stat`. Pipelines run as `bash -o pipefail -c '…'`, and GNU time reports the **largest single "
      "process** of the pipeline, not their sum. Only client processes are measured: the work the "
      "daemon does (staging the export, unpacking a load) shows up in wall time only, for every "
      "method alike.")
    w("- The source daemon's page cache is warmed with one untimed `docker save` first; the output "
      "files go to the work folder on the same disk, except the raw save which goes to `/dev/null` "
      "(its bytes are counted in a separate, untimed `docker save | wc -c`).")
    w("- `partial-save` runs against the source daemon with `-e app:1` (the destination's old "
      "version), signing the manifest with a fresh unprotected key when `keygen` works; the "
      "`--have` row uses the inventory that `partial-load inventory` wrote on the air-gapped daemon. "
      "Bytes written are the bundle file's (the manifest and signature, a few KiB, are not counted).")
    w("- The reference \"new layers, gzip -6 each\" is computed from a `docker save` of the image: "
      "every layer whose diffID the old version lacks, compressed on its own with `gzip -6`.")
    w("- Loads: the image is removed (`docker image rm -f`) from the air-gapped daemon before each "
      "run, untimed; `partial-load load` verifies the signature, the base, the hashes, loads and "
      "confirms; `docker load -q -i` loads the same bundle file. The two loads of a file "
      "alternate run by run, as the raw save and `partial-save` do in the speed series: host noise "
      "moves a daemon's times by up to 20 % from one minute to the next. The other rows run their "
      "runs back to back.")
    w("- A step that fails is marked failed with its first error line, and the run goes on.")
    w("")
    w("## Running it\n")
    w("```sh")
    w("sudo scripts/bench.sh            # full run, rewrites docs/benchmarks.md and docs/benchmarks.png")
    w("sudo scripts/bench.sh --tiny     # a few MiB, no debootstrap, under a minute (CI): target/bench-tiny/")
    w("sudo scripts/bench.sh --big      # 0.6, 2.5 and 10 GiB images and an 8.25 GiB layer: the Scale section")
    w("sudo BENCH_APP_MB=1000 scripts/bench.sh --runs 5 --keep   # bigger layers, more runs, keep the work folder")
    w("scripts/bench.sh --help          # every option and environment variable")
    w("```\n")
    w("It needs root and Debian's `docker.io` (it starts two private daemons under /tmp and stops them "
      "at the end), builds the release binaries, and installs `debootstrap`, `zstd`, `pigz`, `time`, "
      "`python3` and `gnuplot-nox` with apt-get when missing. The Debian root filesystem is cached in "
      "`/var/cache/partial-bench/`. It exits 1 when a step failed (the tables mark it), not when a "
      "target is missed.")
    w("")
    w("It also draws the chart [benchmarks.png](benchmarks.png). `--tiny` is what CI runs, so that "
      "the script keeps working (its figures mean nothing at that size). `--big` measures how the "
      "cost grows instead: images of 0.6, 2.5 and 10 GiB (the last with a layer over 8 GiB and "
      "~170,000 files; about 60 GB of free disk), then a generated archive whose 8.25 GiB layer of "
      "zeros takes no disk; its table is the Scale section below. Not a test: it measures.")
    w("")
    with open(a.md, "w") as f:
        f.write("\n".join(out) + "\n")

    # chart data: label, wall, MiB written, RSS MiB ("?" = missing)
    with open(a.dat, "w") as f:
        f.write("# label\twall_s\tmib_written\trss_mib\n")
        for rid in order:
            r = rows[rid]
            if r["group"] in ("ref", "registry", "speed"):
                continue
            label = r["label"] + ("" if r["ok"] else " (FAILED)")
            q = lambda v: "?" if v is None else f"{v:.3f}"
            mib = r["bytes"] / MIB if r["ok"] and r["bytes"] is not None else None
            kind = 1 if r["group"] in ("partial", "load") and "partial" in r["label"] else 0
            f.write(f"\"{label}\"\t{q(r['wall'] if r['ok'] else None)}\t{q(mib)}\t"
                    f"{q(r['rss'] if r['ok'] else None)}\t{kind}\n")
        nb = get("newgz", "bytes")
        f.write(f"\"new layers, gzip -6 (reference)\"\t?\t{'?' if nb is None else f'{nb / MIB:.3f}'}\t?\t2\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
