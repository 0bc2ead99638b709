//! The complete archive. Every entry of the checked bundle stream is copied byte for byte (its
//! header blocks as read), the missing layer entries are added from the layer files read out of
//! the daemon's export, and the top-level
//! metadata (`manifest.json`, `repositories`, `index.json`, `oci-layout`) is written last, after
//! the layers, as `docker save` does. Written atomically: the file appears only when complete.

use crate::errors::bad_bundle;
use crate::layer_files::LayerFiles;
use anyhow::{anyhow, Context, Result};
use partial_common::archive::entries::{clean_name, role_of, EntryRole, TarReader, TarWriter};
use partial_common::archive::ArchiveError;
use partial_common::output::AtomicFile;
use partial_common::Digest;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::Path;

/// The layer entries to add: entry name → the diffID of the uncompressed layer it holds (the
/// bundle's left-out positions, `bundle_source::left_out_layers`). `docker load` reads a layer
/// through `manifest.json`, sniffs its compression and checks it against the diffID.
pub type Needed = BTreeMap<String, Digest>;

/// The biggest metadata entry held in memory until the end.
const MAX_METADATA: u64 = 16 << 20;

/// A metadata entry held back: its header blocks and data.
type Held = (Vec<u8>, Vec<u8>);

/// Writes the bundle `stream` (plain tar; `label` names it in errors) plus the layers `needed`
/// from the files `found` (by diffID) to `out_path`.
pub fn write_complete(
    stream: impl Read,
    label: &str,
    out_path: &Path,
    mut found: LayerFiles,
    needed: &Needed,
) -> Result<()> {
    let werr = |e: ArchiveError| anyhow!(e).context(format!("writing {}", out_path.display()));
    let mut out =
        AtomicFile::create(out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let mut w = TarWriter::new(BufWriter::new(&mut out));
    let held = copy_entries(stream, label, &mut w)?;
    add_layers(&mut w, &mut found, needed)?;
    for (raw, data) in held {
        w.write_entry(&raw, &data).map_err(werr)?;
    }
    let (bw, _) = w.finish().map_err(werr)?;
    bw.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", out_path.display()))?;
    out.commit()
        .with_context(|| format!("renaming {}", out_path.display()))?;
    Ok(())
}

/// Copies every entry of the bundle, holding back the top-level metadata (returned).
fn copy_entries<W: Write>(
    stream: impl Read,
    label: &str,
    w: &mut TarWriter<W>,
) -> Result<Vec<Held>> {
    let berr = |e| bad_bundle(label, e);
    let mut r = TarReader::new(stream);
    let mut held = Vec::new();
    while let Some(head) = r.next_entry().map_err(berr)? {
        let name = clean_name(&head.name).map_err(berr)?;
        let metadata = matches!(
            role_of(&name),
            EntryRole::Manifest | EntryRole::Repositories | EntryRole::Index | EntryRole::OciLayout
        );
        if metadata && head.is_file() {
            held.push((head.raw, r.read_all(MAX_METADATA).map_err(berr)?));
            continue;
        }
        w.write_raw(&head.raw).map_err(write_err)?;
        let mut data = r.data();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(berr(r.map_data_err(e))),
            };
            w.write_raw(&buf[..n]).map_err(write_err)?;
        }
        w.pad(head.size).map_err(write_err)?;
    }
    Ok(held)
}

fn write_err(e: ArchiveError) -> anyhow::Error {
    anyhow!(e).context("writing the complete archive")
}

/// Appends each needed layer entry from its file.
fn add_layers<W: Write>(
    w: &mut TarWriter<W>,
    found: &mut LayerFiles,
    needed: &Needed,
) -> Result<()> {
    for (entry, diff_id) in needed {
        let f = found
            .get_mut(diff_id)
            .ok_or_else(|| anyhow!("layer {diff_id} ({entry}) was not read from the daemon"))?;
        f.rewind()
            .with_context(|| format!("rereading layer {diff_id}"))?;
        let size = f
            .metadata()
            .with_context(|| format!("rereading layer {diff_id}"))?
            .len();
        w.begin_file(entry, size).map_err(write_err)?;
        let copied =
            io::copy(&mut Read::take(&mut *f, size), w).context("writing the complete archive")?;
        if copied != size {
            return Err(anyhow!(
                "the file of layer {diff_id} changed while it was copied"
            ));
        }
        w.pad(size).map_err(write_err)?;
    }
    Ok(())
}
