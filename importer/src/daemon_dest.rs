//! The Docker Engine as an image destination (`partial-load load` into a daemon). The checked
//! copy (`partial_common::bundle_source::copy_into`) hands [`DaemonDest`] the bundle's configs
//! and carried blobs; it writes them as a docker-loadable archive (`BundleWriter`, the images as
//! a daemon of its platform loads them: `platform_view::Viewed`) into a pipe ([`partial_common::pipe`])
//! that the upload ([`crate::upload`]) streams into `POST /images/load` as it comes.
//!
//! The daemon commits a load when the archive ends, so the upload holds its last chunk back
//! until the pipe ends cleanly, and only the commit ends it so: after the archive's metadata,
//! written from the signed manifest. It then waits for the daemon's answer, as containers/image's
//! docker-daemon destination does. A copy that fails drops the destination; the pipe then ends
//! with an error, never cleanly, the upload aborts and the daemon loads nothing. Which side a
//! failure is blamed on (exit 3, 5 or 1) is decided in one place, [`load`], by the rules of
//! `upload::upload_outcome`.

use crate::bundle::Bundle;
use crate::bundle_reader::{self, Layers};
use crate::upload::{self, Uploaded};
use anyhow::{anyhow, Context, Result};
use indicatif::ProgressBar;
use partial_common::archive::ArchiveError;
use partial_common::bundle_source::{self, BundleSourceError, Copied};
use partial_common::bundle_writer::BundleWriter;
use partial_common::daemon::Daemon;
use partial_common::destination::ImageDestination;
use partial_common::image::Image;
use partial_common::pipe::{self, PipeWriter};
use partial_common::platform_view::{DaemonView, Viewed};
use partial_common::Digest;
use std::collections::BTreeMap;
use std::io::{self, Read};
use tokio::sync::oneshot;

/// The daemon's answer as the commit gets it: the names it loaded, or why it did not.
type Answer = Result<Vec<String>, String>;

/// A daemon's load as an image destination; see the module documentation.
pub struct DaemonDest {
    inner: Viewed<BundleWriter<PipeWriter>>,
    /// The daemon's answer, sent once the upload ended.
    answer: oneshot::Receiver<Answer>,
}

/// What a daemon's load committed.
#[derive(Debug)]
pub struct Loaded {
    /// The names the daemon says it loaded.
    pub names: Vec<String>,
    /// The OCI manifest written for each image: image ID → manifest digest (what the containerd
    /// image store names the image by: `confirm::Written`).
    pub manifests: BTreeMap<Digest, Digest>,
}

impl DaemonDest {
    /// Writes the archive into `pipe` (the upload reads the other end), its images as `view`
    /// has them; `answer` brings the daemon's answer once the upload ended.
    pub fn new(pipe: PipeWriter, view: DaemonView, answer: oneshot::Receiver<Answer>) -> Self {
        DaemonDest {
            inner: Viewed {
                inner: BundleWriter::new(pipe),
                view,
            },
            answer,
        }
    }
}

impl ImageDestination for DaemonDest {
    type Committed = Loaded;

    fn put_config(&mut self, id: &Digest, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.inner.put_config(id, bytes)
    }

    fn put_blob(&mut self, d: &Digest, size: u64, data: &mut dyn Read) -> Result<(), ArchiveError> {
        self.inner.put_blob(d, size, data)
    }

    /// The archive's metadata and end, then the pipe's clean end (the upload releases its held
    /// tail and the daemon commits), then the daemon's answer.
    fn commit(self, images: &[Image]) -> Result<Loaded, ArchiveError> {
        let finished = self.inner.commit(images)?;
        finished.out.finish().map_err(ArchiveError::Write)?;
        let refused = |why: String| {
            ArchiveError::Write(io::Error::other(format!(
                "the daemon did not load the archive: {why}"
            )))
        };
        match self.answer.blocking_recv() {
            Ok(Ok(names)) => Ok(Loaded {
                names,
                manifests: finished.manifests,
            }),
            Ok(Err(why)) => Err(refused(why)),
            Err(_) => Err(refused("the upload ended without an answer".into())),
        }
    }
}

/// Loads `bundle` into `daemon`: the checked copy (its delta layers rebuilt when `layers` has
/// their references) into a [`DaemonDest`] on a blocking thread, the upload of its pipe here.
/// Fails with exit 3 when the bundle contradicts its signed manifest, 5 when the daemon fails,
/// 1 when the bundle cannot be read; nothing is loaded then.
pub async fn load(
    daemon: &Daemon,
    bundle: &Bundle,
    layers: Layers,
    view: DaemonView,
    bar: ProgressBar,
) -> Result<Loaded> {
    let (input, form) = bundle_reader::checked_input(bundle, bar.clone(), layers)?;
    let (pipe, archive) = pipe::pair();
    let (answer, answered) = oneshot::channel();
    let dest = DaemonDest::new(pipe, view, answered);
    let manifest = bundle.manifest.clone();
    let copy =
        tokio::task::spawn_blocking(move || bundle_source::copy_into(input, &manifest, form, dest));
    let uploaded = upload::run(daemon, Box::new(archive), bar).await;
    let _ = answer.send(match &uploaded {
        Ok(u) => answer_of(u),
        Err(e) => Err(format!("{e:#}")),
    });
    // A failed upload may leave the copy waiting on a pipe nobody reads (a hung daemon holds
    // the body): don't wait for it longer than the upload waits for its reader.
    let clean = uploaded.as_ref().is_ok_and(Uploaded::is_clean);
    let copied = match clean {
        true => Some(copy.await),
        false => tokio::time::timeout(upload::PRODUCER_GRACE, copy)
            .await
            .ok(),
    };
    let copied = copied
        .transpose()
        .context("the bundle reading thread failed")?;
    judge(&bundle.name(), copied, uploaded?)
}

/// The daemon's answer for the commit: the names it loaded once the whole archive went.
fn answer_of(u: &Uploaded) -> Answer {
    match (&u.read, &u.loaded) {
        (Ok(()), Ok(names)) => Ok(names.clone()),
        (Err(e), _) => Err(format!("the upload failed: {e}")),
        (_, Err(e)) => Err(e.to_string()),
    }
}

/// The load's outcome from the copy's (`None`: it did not end in time) and the upload's. The
/// copy's error says why the pipe broke, unless the daemon stopped reading first (and the copy
/// only failed to write) or the archive went whole (the daemon's answer decides); then
/// `upload_outcome` blames as it does for every upload.
fn judge(
    label: &str,
    copied: Option<Result<Copied<Loaded>, BundleSourceError>>,
    uploaded: Uploaded,
) -> Result<Loaded> {
    let (committed, failed) = match copied {
        Some(Ok(c)) => (Some(c.committed), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let read = match (uploaded.read, failed) {
        (Ok(()), _) => Ok(()),
        (Err(r), Some(e)) if r.kind() != io::ErrorKind::BrokenPipe || e.is_bundles_fault() => {
            Err(bundle_reader::checked_err(label, e))
        }
        (Err(r), _) => Err(r),
    };
    upload::upload_outcome(read, uploaded.loaded)?;
    committed
        .ok_or_else(|| anyhow!("the daemon loaded bundle {label}, but its copy did not commit"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::daemon::DaemonError;
    use partial_common::exit;

    fn read_all(mut r: impl Read) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    }

    fn image(config: &[u8]) -> Image {
        Image {
            id: Digest::of_bytes(config),
            config: Some(config.to_vec()),
            tags: vec!["app:1".into()],
            layers: vec![],
            aliases: vec![],
            source_manifest: None,
            attached: vec![],
        }
    }

    /// A destination with a config and a blob written, its pipe's reader, and the answer's sender.
    fn started() -> (DaemonDest, pipe::PipeReader, oneshot::Sender<Answer>, Image) {
        let (w, r) = pipe::pair();
        let (tx, rx) = oneshot::channel();
        let mut d = DaemonDest::new(w, DaemonView::default(), rx);
        let img = image(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#);
        let config = img.config.clone().unwrap_or_default();
        d.put_config(&img.id, &config).unwrap();
        let blob = vec![7u8; 300_000];
        d.put_blob(&Digest::of_bytes(&blob), blob.len() as u64, &mut &blob[..])
            .unwrap();
        (d, r, tx, img)
    }

    #[test]
    fn a_dropped_destination_ends_its_pipe_with_an_error_never_cleanly() {
        let (d, r, _tx, _) = started();
        drop(d);
        let e = read_all(r).unwrap_err();
        assert!(e.to_string().contains("without finishing"), "{e}");
    }

    #[test]
    fn the_commit_ends_the_pipe_cleanly_then_waits_for_the_daemons_answer() {
        let (d, r, tx, img) = started();
        let images = vec![img.clone()];
        let commit = std::thread::spawn(move || d.commit(&images));
        // The archive must end (cleanly) before the answer comes; a pipe left open fails here.
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(read_all(r)));
        let archive = ended
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the commit did not end the pipe before the answer")
            .unwrap();
        let text = String::from_utf8_lossy(&archive);
        assert!(
            text.contains("manifest.json") && text.contains("app:1"),
            "no metadata"
        );
        assert!(
            !commit.is_finished(),
            "the commit returned before the daemon answered"
        );
        tx.send(Ok(vec!["Loaded image: app:1".into()])).unwrap();
        let loaded = commit.join().unwrap().unwrap();
        assert_eq!(loaded.names, ["Loaded image: app:1"]);
        let m = partial_common::bundle_writer::oci_manifest(&img).unwrap();
        assert_eq!(loaded.manifests.get(&img.id), Some(&Digest::of_bytes(&m)));
    }

    #[test]
    fn a_daemon_that_refuses_or_never_answers_fails_the_commit() {
        let (d, r, tx, img) = started();
        tx.send(Err("no space left on device".into())).unwrap();
        let reader = std::thread::spawn(move || read_all(r));
        let e = d.commit(std::slice::from_ref(&img)).unwrap_err();
        assert!(e.to_string().contains("no space left"), "{e}");
        assert!(reader.join().unwrap().is_ok());
        let (d, r, tx, img) = started();
        drop(tx);
        let reader = std::thread::spawn(move || read_all(r));
        let e = d.commit(&[img]).unwrap_err();
        assert!(e.to_string().contains("without an answer"), "{e}");
        assert!(reader.join().unwrap().is_ok());
    }

    #[test]
    fn the_judge_blames_the_side_that_failed_first() {
        let code = |r: Result<Loaded>| exit::code_of(r.unwrap_err().chain());
        let up = |read: io::Result<()>, loaded: Result<Vec<String>, DaemonError>| Uploaded {
            read,
            loaded,
        };
        let cut = || io::Error::other("the stream's writer stopped without finishing");
        let died = || Err(DaemonError::LoadFailed("connection reset".into()));
        let failed = |e: BundleSourceError| Some(Err(e));
        // The bundle contradicts its manifest: exit 3, whatever the daemon said.
        let bad = || BundleSourceError::Missing {
            what: "layer x".into(),
        };
        let r = judge("b", failed(bad()), up(Err(cut()), died()));
        assert!(format!("{:#}", r.as_ref().unwrap_err()).contains("layer x"));
        assert_eq!(code(r), exit::VERIFY);
        let pipe_gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading");
        let r = judge("b", failed(bad()), up(Err(pipe_gone()), died()));
        assert_eq!(code(r), exit::VERIFY);
        // The daemon went away: the copy only failed to write. Exit 5, the daemon's error.
        let write = BundleSourceError::Write(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
        let r = judge("b", failed(write), up(Err(pipe_gone()), died()));
        assert!(format!("{:#}", r.as_ref().unwrap_err()).contains("connection reset"));
        assert_eq!(code(r), exit::DAEMON);
        // A volume that cannot be read: exit 1.
        let gone = io::Error::new(io::ErrorKind::NotFound, "volume 2");
        let r = judge(
            "b",
            failed(ArchiveError::Io(gone).into()),
            up(Err(cut()), died()),
        );
        assert!(format!("{:#}", r.as_ref().unwrap_err()).contains("reading the bundle"));
        assert_eq!(code(r), exit::FAILURE);
        // The whole archive went and the daemon refused it (the commit failed): exit 5.
        let refused = BundleSourceError::Write(io::Error::other("the daemon did not load"));
        assert_eq!(
            code(judge("b", failed(refused), up(Ok(()), died()))),
            exit::DAEMON
        );
        // A clean load gives what the commit gave.
        let committed = Copied {
            committed: Loaded {
                names: vec!["x".into()],
                manifests: BTreeMap::new(),
            },
            blobs: 0,
        };
        let ok = judge("b", Some(Ok(committed)), up(Ok(()), Ok(vec!["x".into()])));
        assert_eq!(ok.unwrap().names, ["x"]);
    }
}
