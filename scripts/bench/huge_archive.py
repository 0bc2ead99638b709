#!/usr/bin/env python3
"""huge_archive.py OUT.tar [GIB]: writes a `docker save` archive (Docker 25 layout: OCI blobs
plus manifest.json, which older daemons load too) of one image, `huge:1`, whose only layer holds
one file of GIB GiB of zeros (default 8.25). Both the layer's tar entry in the archive and the
file's entry inside the layer are over 8 GiB, so their sizes are written as PAX records, as Docker
(Go's archive/tar) writes them. The zeros are holes: the file takes almost no disk. Used by
`scripts/bench.sh --big` to run partial-save and partial-load on an entry over 8 GiB when there
is no disk for a real one. Standard library only."""
import hashlib
import io
import json
import sys
import tarfile

BLOCK = 512
ZERO_CHUNK = bytes(16 << 20)


def pad(n):
    return (BLOCK - n % BLOCK) % BLOCK


def header(name, size, typ=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mode, ti.mtime = size, typ, 0o644, 0
    return ti.tobuf(format=tarfile.PAX_FORMAT)


def layer_parts(size):
    """The layer tar around its run of zeros: (head, zeros, tail)."""
    head = header("zero.bin", size)
    tail = bytes(pad(size)) + bytes(2 * BLOCK)
    return head, size, tail


def digest_of(head, zeros, tail):
    h = hashlib.sha256(head)
    left = zeros
    while left:
        n = min(left, len(ZERO_CHUNK))
        h.update(ZERO_CHUNK[:n])
        left -= n
    h.update(tail)
    return h.hexdigest()


def main():
    out = sys.argv[1]
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 8.25
    size = int(gib * (1 << 30))
    head, zeros, tail = layer_parts(size)
    layer_size = len(head) + zeros + len(tail)
    layer = digest_of(head, zeros, tail)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/zero.bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer]},
        "history": [{"created_by": "huge_archive.py"}],
    }, separators=(",", ":")).encode()
    cfg = hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + cfg, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + layer, "size": layer_size}],
    }, separators=(",", ":")).encode()
    man = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + man, "size": len(manifest),
                       "annotations": {"io.containerd.image.name": "docker.io/library/huge:1",
                                       "org.opencontainers.image.ref.name": "1"}}],
    }, separators=(",", ":")).encode()
    docker_manifest = json.dumps([{
        "Config": "blobs/sha256/" + cfg, "RepoTags": ["huge:1"],
        "Layers": ["blobs/sha256/" + layer],
    }], separators=(",", ":")).encode()

    with open(out, "wb") as f:
        def small(name, data, typ=tarfile.REGTYPE):
            f.write(header(name, len(data), typ))
            f.write(data + bytes(pad(len(data))))

        for d in ("blobs/", "blobs/sha256/"):
            f.write(header(d, 0, tarfile.DIRTYPE))
        small("blobs/sha256/" + cfg, config)
        f.write(header("blobs/sha256/" + layer, layer_size))
        f.write(head)
        f.seek(zeros, io.SEEK_CUR)  # a hole: reads as zeros
        f.write(tail + bytes(pad(layer_size)))
        small("blobs/sha256/" + man, manifest)
        small("index.json", index)
        small("manifest.json", docker_manifest)
        small("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        f.write(bytes(2 * BLOCK))
    print(f"huge:1 sha256:{cfg} layer {layer_size} bytes")


if __name__ == "__main__":
    main()
