//! [`DaemonSource`]: images on a live daemon, inspected when the source is opened (the inspect
//! gives the ID and diffIDs, not the raw config: the config arrives in the export), streamed
//! with one `docker save` of the wanted references. The stream is read in one pass: legacy
//! folders are identified from their `json`, the ≥ 25 layout names layers by diffID, and the
//! containerd layout's compressed blobs wait on disk until the manifests say what they are.

use super::{Sink, Source};
use crate::archive::ArchiveError;
use crate::channel_reader::ChannelReader;
use crate::daemon::{Daemon, DaemonError};
use crate::image::Image;
use crate::reference::{id_hex, tag_among};
use std::time::Duration;

/// A live daemon; see the module documentation.
pub struct DaemonSource {
    daemon: Daemon,
    images: Vec<Image>,
    /// The references as given, exported together.
    references: Vec<String>,
    idle: Duration,
}

impl DaemonSource {
    /// Inspects every reference on the daemon (never pulls). Several references to one image
    /// make one image with all the tags they name. `idle` bounds silence mid-export.
    pub async fn open(
        daemon: Daemon,
        references: &[String],
        idle: Duration,
    ) -> Result<Self, DaemonError> {
        let mut images: Vec<Image> = Vec::new();
        for name in references {
            let meta = daemon.require(name).await?;
            // The daemon's own name: podman reports `docker.io/library/app:1` for `app:1`, and
            // names a short name's local image `localhost/app:1`.
            let tag = tag_among(name, &meta.tags);
            match images.iter_mut().find(|i| i.id == meta.id) {
                Some(img) => {
                    if let Some(t) = tag {
                        img.add_tag(&t);
                    }
                }
                None => images.push(Image::from_diff_ids(
                    meta.id,
                    tag.into_iter().collect(),
                    &meta.diff_ids,
                )),
            }
        }
        Ok(DaemonSource {
            daemon,
            images,
            references: references.to_vec(),
            idle,
        })
    }

    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }
}

impl Source for DaemonSource {
    fn blame(&self) -> super::Blame {
        super::Blame::Daemon
    }

    fn label(&self) -> String {
        format!(
            "export of {} from {}",
            self.references.join(", "),
            self.daemon.host
        )
    }

    fn images(&self) -> &[Image] {
        &self.images
    }

    fn find(&self, reference: &str) -> Option<Image> {
        let tagged = self
            .images
            .iter()
            .find_map(|i| tag_among(reference, &i.tags).map(|t| (i, t)));
        if let Some((img, t)) = tagged {
            let mut img = img.clone();
            img.tags = vec![t];
            return Some(img);
        }
        let hex = id_hex(reference)?;
        self.images
            .iter()
            .find(|i| i.id.hex().starts_with(hex))
            .cloned()
    }

    /// Must run inside the tokio runtime (e.g. on a `spawn_blocking` thread): the export is read
    /// by a task of the runtime.
    fn stream(&self, _wanted: &[Image], sink: &mut dyn Sink) -> Result<(), ArchiveError> {
        let stream = self.daemon.export(&self.references);
        let mut reader = ChannelReader::spawn(stream, self.idle);
        sink.input(&mut reader, &self.label(), None)
    }
}
