//! The base of each image, from the image store when one is reachable (a Docker daemon, or any
//! other [`BaseStore`], such as a containerd namespace): the image holding the layers
//! the bundle left out (exactly those, for its config to compare against), its package databases
//! and the paths of its layers, read from the daemon's export of that image. Without a daemon
//! the report says what it cannot know instead of failing.

use crate::config_diff::ImageConfig;
use crate::layers::{DbState, PathSet};
use crate::model::BaseSource;
use crate::packages::{Manager, Packages};
use crate::scan;
use crate::ReportError;
use partial_common::channel_reader::ChannelReader;
use partial_common::daemon::{Daemon, ImageMeta};
use partial_common::manifest::{BundleManifest, Image};
use partial_common::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

/// What is known of one image's base.
#[derive(Clone)]
pub enum Base {
    /// Every layer is carried: there is no base.
    None,
    /// Read from the daemon.
    Found(Arc<BaseData>),
    /// Not available; why.
    Unavailable(String),
}

/// A base image as read from the daemon.
pub struct BaseData {
    /// How the daemon names it (first tag and ID).
    pub name: String,
    /// Its config, when the image holds exactly the left-out layers.
    pub config: Option<ImageConfig>,
    /// Why the config is not compared, when it is not.
    pub note: Option<String>,
    pub dbs: BTreeMap<Manager, Packages>,
    pub paths: Arc<PathSet>,
}

/// The bases of the bundle's images.
pub struct Bases {
    pub source: BaseSource,
    pub per_image: Vec<Base>,
}

/// Where base images are read from: an image store that exports one image as a tar holding its
/// config (`blobs/sha256/<id>`, or a legacy `<id>.json`) and its layers (under any names: each
/// is recognised by the diffID it hashes to).
pub trait BaseStore: Sync {
    /// How the report names it (`unix:///run/docker.sock`, `containerd … (namespace …)`).
    fn place(&self) -> String;
    /// Image `meta` as that tar stream.
    fn export_image(&self, meta: &ImageMeta) -> Box<dyn Read + Send>;
}

impl BaseStore for Daemon {
    fn place(&self) -> String {
        self.host.clone()
    }

    fn export_image(&self, meta: &ImageMeta) -> Box<dyn Read + Send> {
        Box::new(ChannelReader::spawn(
            self.export(&[meta.id.to_string()]),
            partial_common::daemon::EXPORT_IDLE,
        ))
    }
}

/// How many layers at the bottom of `img` are left out (the destination's base).
pub fn left_out(img: &Image) -> usize {
    img.layers.iter().take_while(|l| !l.carried).count()
}

/// Finds and reads the base of every image from the store `reached` (with its images), or
/// says for each why it cannot (`reached` is the reason there is no store); never fails for want
/// of a store or a base.
pub async fn gather(
    reached: Result<(&dyn BaseStore, &[ImageMeta]), String>,
    manifest: &BundleManifest,
) -> Bases {
    let (store, local) = match reached {
        Ok(d) => d,
        Err(why) => return unavailable(why, manifest),
    };
    let mut cache: BTreeMap<(Digest, usize), Base> = BTreeMap::new();
    let mut per_image = Vec::new();
    for img in &manifest.images {
        per_image.push(base_of(store, local, img, &mut cache).await);
    }
    Bases {
        source: BaseSource::Daemon {
            host: store.place(),
        },
        per_image,
    }
}

/// No base can be compared, for the reason `why`.
fn unavailable(why: String, manifest: &BundleManifest) -> Bases {
    let note = format!("base not available: cannot compare ({why})");
    let per_image = manifest
        .images
        .iter()
        .map(|i| match left_out(i) {
            0 => Base::None,
            _ => Base::Unavailable(note.clone()),
        })
        .collect();
    Bases {
        source: BaseSource::None { why },
        per_image,
    }
}

async fn base_of(
    store: &dyn BaseStore,
    local: &[ImageMeta],
    img: &Image,
    cache: &mut BTreeMap<(Digest, usize), Base>,
) -> Base {
    let k = left_out(img);
    if k == 0 {
        return Base::None;
    }
    let chain = &img.layers[k - 1].chain_id;
    let Some(meta) = pick(local, chain, k) else {
        return Base::Unavailable(format!(
            "base not available: cannot compare (no image of {} holds chain {chain})",
            store.place()
        ));
    };
    if let Some(b) = cache.get(&(meta.id.clone(), k)) {
        return b.clone();
    }
    let b = match read(store, meta, k).await {
        Ok(d) => Base::Found(Arc::new(d)),
        Err(e) => Base::Unavailable(format!("base not available: cannot compare ({e})")),
    };
    cache.insert((meta.id.clone(), k), b.clone());
    b
}

/// The image holding chain `chain` at position `k`: one with exactly `k` layers first.
fn pick<'a>(local: &'a [ImageMeta], chain: &Digest, k: usize) -> Option<&'a ImageMeta> {
    let holding = local
        .iter()
        .filter(|m| m.chain_ids.get(k - 1) == Some(chain));
    let mut best: Option<&ImageMeta> = None;
    for m in holding {
        let better = match best {
            None => true,
            Some(b) => {
                (m.chain_ids.len() == k && b.chain_ids.len() != k)
                    || (m.chain_ids.len() == b.chain_ids.len()
                        && !m.tags.is_empty()
                        && b.tags.is_empty())
            }
        };
        if better {
            best = Some(m);
        }
    }
    best
}

/// Reads the bottom `k` layers of `meta` (and its config) from the store's export.
async fn read(store: &dyn BaseStore, meta: &ImageMeta, k: usize) -> Result<BaseData, ReportError> {
    let wanted: Vec<Digest> = meta.diff_ids[..k].to_vec();
    let set: BTreeSet<Digest> = wanted.iter().cloned().collect();
    let reader = store.export_image(meta);
    let id = meta.id.clone();
    let scan = tokio::task::spawn_blocking(move || scan::scan_export(reader, &id, &set))
        .await
        .map_err(|e| ReportError::Thread(e.to_string()))??;
    let mut paths = PathSet::default();
    let mut dbs: BTreeMap<Manager, Packages> = BTreeMap::new();
    for d in &wanted {
        let Some(l) = scan.layers.get(d) else {
            continue;
        };
        paths.apply(l);
        for (m, state) in &l.dbs {
            match state {
                DbState::Present(p) => dbs.insert(*m, p.clone()),
                DbState::Removed => dbs.remove(m),
            };
        }
    }
    let name = match meta.tags.first() {
        Some(t) => format!("{t} ({})", meta.id),
        None => meta.id.to_string(),
    };
    let exact = meta.diff_ids.len() == k;
    Ok(BaseData {
        name,
        config: scan.config.filter(|_| exact),
        note: (!exact).then(|| {
            "no image on the daemon holds exactly the left-out layers: its config is not compared"
                .to_string()
        }),
        dbs,
        paths: Arc::new(paths),
    })
}
