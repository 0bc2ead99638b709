#!/usr/bin/env python3
"""new_layers_gzip.py SAVE.tar DIFFID...: the reference size for the bundle target.

Reads a `docker save` archive (legacy or OCI layout), takes every layer whose diffID is not among
the given ones (the layers the destination lacks), compresses each with `gzip -6` and prints
"COUNT UNCOMPRESSED_BYTES GZIP6_BYTES". Layers repeated in the image are counted once.
"""
import json
import posixpath
import subprocess
import sys
import tarfile
import threading


def resolve(tf: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    """The regular file behind NAME (save archives link repeated layers)."""
    for _ in range(16):
        member = tf.getmember(name)
        if member.issym():
            name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        elif member.islnk():
            name = member.linkname
        else:
            return member
    raise ValueError(f"link loop at {name}")


def main() -> int:
    path, have = sys.argv[1], set(sys.argv[2:])
    with tarfile.open(path) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
        seen, count, raw, packed = set(), 0, 0, 0
        for entry in manifest:
            config = json.load(tf.extractfile(entry["Config"]))
            for diff_id, layer in zip(config["rootfs"]["diff_ids"], entry["Layers"]):
                if diff_id in have or diff_id in seen:
                    continue
                seen.add(diff_id)
                member = resolve(tf, layer)
                gz = subprocess.Popen(["gzip", "-6", "-c"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
                out = [0]

                def drain(p=gz, o=out):
                    while True:
                        b = p.stdout.read(1 << 20)
                        if not b:
                            return
                        o[0] += len(b)

                t = threading.Thread(target=drain)
                t.start()
                src = tf.extractfile(member)
                while True:
                    b = src.read(1 << 20)
                    if not b:
                        break
                    raw += len(b)
                    gz.stdin.write(b)
                gz.stdin.close()
                t.join()
                if gz.wait() != 0:
                    print("gzip failed", file=sys.stderr)
                    return 1
                count += 1
                packed += out[0]
    print(count, raw, packed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
