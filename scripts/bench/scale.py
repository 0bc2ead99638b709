#!/usr/bin/env python3
"""scale.py RESULTS.tsv SCALE.tsv BENCHMARKS.md [options]: the "Scale" section of
docs/benchmarks.md from a `scripts/bench.sh --big` run, put in place of the old one (or appended).

RESULTS.tsv: bench.sh's measure lines (id, label, group, status, wall, peak RSS KiB, bytes, wall
min, wall max, CPU, daemon CPU, note), ids `big<GiB>-raw|save|verify|load|rehydrate`.
SCALE.tsv: GiB, image size (bytes), files, raw save bytes, "same image ID"/..., biggest layer
"SIZE HOW" (HOW: PAX size, base-256 or octal). Standard library only.

`scale.py --keep OLD.md NEW.md` copies the Scale and Gzip levers sections of OLD.md into NEW.md
(bench.sh uses it so that a normal run keeps the last --big table and the levers measured by
hand)."""
import argparse
import csv
import os
import re
import sys

MIB = 1024 * 1024
GIB = 1024 * MIB
HEADING = "## Scale"


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# Sections of benchmarks.md written by hand or by other runs; a normal run keeps them.
KEPT = ("## Gzip levers", "## Scale")


def section(text, heading=HEADING):
    """(start, end) of the section under `heading` in text, or None."""
    m = re.search(r"^" + re.escape(heading) + r"\b.*$", text, re.M)
    if not m:
        return None
    nxt = re.search(r"^## ", text[m.end():], re.M)
    return m.start(), (m.end() + nxt.start()) if nxt else len(text)


def splice(text, new, heading=HEADING):
    where = section(text, heading)
    if where is None:
        return text.rstrip("\n") + "\n\n" + new
    a, b = where
    return text[:a] + new + ("\n" if b < len(text) else "") + text[b:]


def keep(old_path, new_path):
    if not os.path.exists(old_path):
        return 0
    old = open(old_path).read()
    new = open(new_path).read()
    for heading in KEPT:
        where = section(old, heading)
        if where is not None:
            a, b = where
            new = splice(new, old[a:b].rstrip("\n") + "\n", heading)
    open(new_path, "w").write(new)
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--keep":
        return keep(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("scale")
    ap.add_argument("md")
    for opt in ("machine", "date", "commit", "command"):
        ap.add_argument("--" + opt, default="")
    a = ap.parse_args()

    rows = {}
    with open(a.results, newline="") as f:
        for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            r += [""] * (12 - len(r))
            rows[r[0]] = dict(ok=r[3] == "ok", wall=num(r[4]), rss=num(r[5]), bytes=num(r[6]),
                              note=r[11].strip())

    def get(rid, key):
        r = rows.get(rid)
        return r[key] if r and r["ok"] else None

    def secs(v, rid=None):
        if v is None:
            return "–" if rid is not None and rid not in rows else "failed"
        return f"{v:.1f} s" if v < 120 else f"{v:.0f} s ({v / 60:.1f} min)"

    def mib(kib):
        return "–" if kib is None else f"{kib / 1024:.1f} MiB"

    out = [f"{HEADING} (`scripts/bench.sh --big`)\n"]
    w = out.append
    w("How the cost grows with the image: one image per size, the Debian base (present on the "
      "destination) plus one new layer of application files (35% random, 15% base64, 50% "
      "JSON-like text, a tenth of it in ~6 KiB files); `partial-save` (gzip, signed, "
      "`-e debian:bench`) carries that layer, `partial-load` verifies, loads it into a daemon "
      "holding the base and rehydrates a complete archive from it. One run per step; peak RSS "
      "is the largest resident set of the tool's process.\n")
    w(f"- **When**: {a.date}, commit `{a.commit}`")
    w(f"- **Machine**: {a.machine}")
    w(f"- **Command**: `{a.command}`\n")
    w("| Image | Files | Biggest layer (size field) | `docker save` | `partial-save` | vs raw save "
      "| Bundle | Peak RSS save | `verify` | `load` | `rehydrate` | Peak RSS `partial-load` "
      "| Result |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    with open(a.scale, newline="") as f:
        for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            gib = r[0]
            if len(r) < 6:
                w(f"| {gib} GiB | | | | | | | | | | | | {r[-1]} |")
                continue
            _, size, files, raw_bytes, same, biggest = r[:6]
            p = f"big{gib}"
            if gib == "huge":
                p = "bighuge"
            raw, save = get(p + "-raw", "wall"), get(p + "-save", "wall")
            ratio = f"{save / raw:.2f}×" if raw and save else "–"
            bundle = get(p + "-save", "bytes")
            bsize = "–" if bundle is None else f"{bundle / GIB:.2f} GiB"
            load_rss = [get(p + s, "rss") for s in ("-verify", "-load", "-rehydrate")]
            load_rss = [v for v in load_rss if v is not None]
            parts = biggest.split()
            if len(parts) >= 2:
                biggest = f"{int(parts[0]) / GIB:.2f} GiB ({' '.join(parts[1:])})"
            size_text = f"{int(size) / GIB:.2f} GiB" if size.isdigit() else f"{gib} GiB (not built)"
            if gib == "huge":
                size_text += " (generated archive, zeros, offline export)"
            files = f"{int(files):,}" if files.isdigit() else "–"
            w(f"| {size_text} | {files} | {biggest} | {secs(raw, p + '-raw')} | {secs(save)} | {ratio} "
              f"| {bsize} | {mib(get(p + '-save', 'rss'))} | {secs(get(p + '-verify', 'wall'))} "
              f"| {secs(get(p + '-load', 'wall'), p + '-load')} "
              f"| {secs(get(p + '-rehydrate', 'wall'), p + '-rehydrate')} "
              f"| {mib(max(load_rss) if load_rss else None)} | {same} |")
    w("")
    new = "\n".join(out) + "\n"
    text = open(a.md).read() if os.path.exists(a.md) else "# Benchmarks\n"
    open(a.md, "w").write(splice(text, new))
    return 0


if __name__ == "__main__":
    sys.exit(main())
