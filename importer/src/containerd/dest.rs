//! containerd's content store as the destination of a checked copy
//! (`partial_common::bundle_source::copy_into`): each config and carried blob goes to
//! `Content.Write` as the bundle source hands it over, with its expected digest, so that
//! containerd checks it too and commits nothing else. Everything is written under the load's
//! lease and nothing refers to it yet; the commit hands back what was written for the image
//! phase ([`super::load`]: manifests, unpack, image records), which runs only after the whole
//! bundle checked out. The copy runs on a blocking thread: each write is driven on the runtime
//! from there.

use super::content::{self, WriteError};
use super::grpc::{self, CallError, Client};
use partial_common::archive::ArchiveError;
use partial_common::destination::ImageDestination;
use partial_common::image::Image;
use partial_common::Digest;
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

/// The label that keeps an image's unpacked snapshot while its config is kept.
pub fn snapshot_gc_label(snapshotter: &str) -> String {
    format!("containerd.io/gc.ref.snapshot.{snapshotter}")
}

/// Where a copy into containerd writes.
pub struct ContainerdDest {
    pub client: Client,
    pub lease: String,
    pub handle: tokio::runtime::Handle,
    pub snapshotter: String,
    /// Image ID → the chain ID of its top layer (the snapshot its config keeps).
    pub top_chain: HashMap<Digest, Digest>,
    /// containerd's own error when a write failed (the copy only sees an I/O error).
    pub failure: Arc<Mutex<Option<CallError>>>,
    pub written: Written,
}

/// What the copy wrote: the size of every config and carried blob.
#[derive(Debug, Default)]
pub struct Written {
    pub sizes: HashMap<Digest, u64>,
}

impl ContainerdDest {
    fn write(
        &mut self,
        d: &Digest,
        size: u64,
        labels: HashMap<String, String>,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let result = self.handle.block_on(content::write(
            &self.client,
            &self.lease,
            d,
            size,
            labels,
            data,
        ));
        match result {
            Ok(()) => {
                self.written.sizes.insert(d.clone(), size);
                Ok(())
            }
            Err(WriteError::Read(e)) => Err(ArchiveError::Io(e)),
            // containerd refused the commit: its hash of the bytes is not `d`. The bundle
            // source's own check of the same bytes fails as soon as this returns, naming the
            // entry (exit 3); should it not, the commit refuses.
            Err(WriteError::Containerd(e)) if e.code() == Some(grpc::FAILED_PRECONDITION) => {
                if let Ok(mut slot) = self.failure.lock() {
                    slot.get_or_insert(e);
                }
                Ok(())
            }
            Err(WriteError::Containerd(e)) => {
                let msg = e.to_string();
                if let Ok(mut slot) = self.failure.lock() {
                    slot.get_or_insert(e);
                }
                Err(ArchiveError::Write(io::Error::other(msg)))
            }
        }
    }
}

impl ImageDestination for ContainerdDest {
    type Committed = Written;

    fn put_config(&mut self, id: &Digest, bytes: &[u8]) -> Result<(), ArchiveError> {
        let mut labels = HashMap::new();
        if let Some(top) = self.top_chain.get(id) {
            labels.insert(snapshot_gc_label(&self.snapshotter), top.to_string());
        }
        self.write(id, bytes.len() as u64, labels, &mut &bytes[..])
    }

    fn put_blob(&mut self, d: &Digest, size: u64, data: &mut dyn Read) -> Result<(), ArchiveError> {
        self.write(d, size, HashMap::new(), data)
    }

    fn commit(self, _images: &[Image]) -> Result<Written, ArchiveError> {
        if let Some(e) = self
            .failure
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|e| e.to_string()))
        {
            return Err(ArchiveError::Write(io::Error::other(e)));
        }
        Ok(self.written)
    }
}
