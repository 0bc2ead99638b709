//! [`OciDirSource`]: an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`),
//! as skopeo `oci:DIR` or umoci write it. Its metadata is read from the files directly (layer
//! blobs are only measured and sniffed); to stream, its metadata files and the layer blobs of
//! the wanted images are handed to the engine file by file, each opened when it is reached.

use super::{find_in_index, Sink, Source};
use crate::archive::blob_files::BlobFile;
use crate::archive::metadata::{Collected, MAX_JSON};
use crate::archive::scan::index_of;
use crate::archive::{ArchiveError, ArchiveIndex, EntryInfo};
use crate::codec;
use crate::image::{Image, Platform};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// An OCI layout directory; see the module documentation.
pub struct OciDirSource {
    dir: PathBuf,
    index: ArchiveIndex,
    images: Vec<Image>,
    /// Entry names of the metadata files (`oci-layout`, `index.json`, JSON blobs).
    metadata: Vec<String>,
}

fn read_small(path: &Path) -> Result<Vec<u8>, ArchiveError> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_JSON {
        return Err(ArchiveError::TooLarge {
            entry: path.display().to_string(),
            size: len,
        });
    }
    Ok(std::fs::read(path)?)
}

impl OciDirSource {
    /// Reads the layout at `dir`; in nested multi-platform indexes only `platform`'s images are
    /// read (references find `platform`'s image; a multi-platform index keeps every platform).
    pub fn open(dir: &Path, platform: Option<&Platform>) -> Result<Self, ArchiveError> {
        let label = dir.display().to_string();
        let mut c = Collected {
            label: label.clone(),
            platform: platform.cloned(),
            saw_blobs: true,
            ..Default::default()
        };
        let mut metadata = Vec::new();
        for name in ["oci-layout", "index.json"] {
            let p = dir.join(name);
            if !p.is_file() {
                return Err(ArchiveError::NotALayout(format!(
                    "{label}: no {name} (is it an OCI image layout directory?)"
                )));
            }
            c.add(name, read_small(&p)?)?;
            metadata.push(name.to_string());
        }
        let mut entries = BTreeMap::new();
        let blobs = dir.join("blobs").join("sha256");
        let listing = match std::fs::read_dir(&blobs) {
            Ok(l) => l.collect::<Result<Vec<_>, _>>()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for ent in listing {
            let Some(hex) = ent.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !crate::digest::is_sha256_hex(&hex) {
                continue;
            }
            let name = format!("blobs/sha256/{hex}");
            let path = ent.path();
            let size = std::fs::metadata(&path)?.len();
            let mut prefix = [0u8; 64];
            let n = read_prefix(&path, &mut prefix)?;
            if size <= MAX_JSON
                && prefix[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
            {
                c.add(&name, read_small(&path)?)?;
                metadata.push(name);
            } else {
                let compression = codec::detect(&prefix[..n]);
                entries.insert(
                    name,
                    EntryInfo {
                        size,
                        compression,
                        digest: None,
                    },
                );
            }
        }
        let index = index_of(&c, entries, BTreeMap::new())?;
        let images = index.models();
        Ok(OciDirSource {
            dir: dir.to_path_buf(),
            index,
            images,
            metadata,
        })
    }
}

fn read_prefix(path: &Path, buf: &mut [u8]) -> io::Result<usize> {
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl Source for OciDirSource {
    fn label(&self) -> String {
        self.dir.display().to_string()
    }

    fn images(&self) -> &[Image] {
        &self.images
    }

    fn find(&self, reference: &str) -> Option<Image> {
        find_in_index(&self.index, reference)
    }

    fn file_index(&self) -> Option<&ArchiveIndex> {
        Some(&self.index)
    }

    fn stream(&self, wanted: &[Image], sink: &mut dyn Sink) -> Result<(), ArchiveError> {
        let mut names: BTreeSet<String> = self.metadata.iter().cloned().collect();
        for img in &self.index.images {
            if wanted.iter().any(|w| img.named_by(&w.id)) {
                names.extend(
                    img.layer_entries
                        .iter()
                        .filter(|e| self.index.entries.contains_key(*e))
                        .cloned(),
                );
            }
        }
        let mut entries = Vec::new();
        for name in names {
            let path = self.dir.join(&name);
            let size = std::fs::metadata(&path)?.len();
            entries.push(BlobFile {
                name,
                size,
                open: Box::new(move || Ok(Box::new(File::open(path)?) as Box<dyn Read>)),
            });
        }
        sink.files(
            &mut entries.into_iter(),
            &self.label(),
            Some(self.index.clone()),
        )
    }
}
