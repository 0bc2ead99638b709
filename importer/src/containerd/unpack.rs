//! Unpacking an image into a snapshotter, as containerd's Go unpacker does: for each layer from
//! the bottom, a snapshot named by its chain ID is kept when it exists; otherwise an active
//! snapshot is prepared on the parent chain, the layer blob applied into it by containerd's diff
//! service (which checks the uncompressed digest, returned here against the diffID), and the
//! snapshot committed under the chain ID. An active snapshot left by a failure is removed.

use super::grpc::{self, CallError, Client};
use super::proto::*;
use partial_common::Digest;
use std::collections::HashMap;

const SNAPSHOTS: &str = "/containerd.services.snapshots.v1.Snapshots";
const DIFF: &str = "/containerd.services.diff.v1.Diff";

/// One layer to unpack: its blob, its diffID and its chain ID.
pub struct Step {
    pub blob: Descriptor,
    pub diff_id: Digest,
    pub chain_id: Digest,
}

/// Unpacks `steps` (bottom first) into `snapshotter`; how many layers were applied.
pub async fn unpack(c: &Client, snapshotter: &str, steps: &[Step]) -> Result<usize, CallError> {
    let mut applied = 0;
    let mut parent = String::new();
    for s in steps {
        let chain = s.chain_id.to_string();
        if !exists(c, snapshotter, &chain).await? {
            apply(c, snapshotter, &parent, s).await?;
            applied += 1;
        }
        parent = chain;
    }
    Ok(applied)
}

/// Whether `snapshotter` has a snapshot named `key`.
pub async fn exists(c: &Client, snapshotter: &str, key: &str) -> Result<bool, CallError> {
    let req = SnapshotKey {
        snapshotter: snapshotter.to_string(),
        key: key.to_string(),
    };
    match c
        .unary::<_, Empty>(&format!("{SNAPSHOTS}/Stat"), &req)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(grpc::NOT_FOUND) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn apply(c: &Client, snapshotter: &str, parent: &str, s: &Step) -> Result<(), CallError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let key = format!("extract-{nanos}-{}", s.chain_id);
    let prepare = PrepareSnapshotRequest {
        snapshotter: snapshotter.to_string(),
        key: key.clone(),
        parent: parent.to_string(),
        labels: HashMap::from([(
            "containerd.io/snapshot.ref".to_string(),
            s.chain_id.to_string(),
        )]),
    };
    let mounts: MountsResponse = c.unary(&format!("{SNAPSHOTS}/Prepare"), &prepare).await?;
    let result = apply_and_commit(c, snapshotter, &key, mounts.mounts, s).await;
    if result.is_err() {
        let req = SnapshotKey {
            snapshotter: snapshotter.to_string(),
            key,
        };
        let _ = c
            .unary::<_, Empty>(&format!("{SNAPSHOTS}/Remove"), &req)
            .await;
    }
    match result {
        // Another unpack committed the same chain meanwhile: that one serves.
        Err(e) if e.code() == Some(grpc::ALREADY_EXISTS) => Ok(()),
        r => r,
    }
}

async fn apply_and_commit(
    c: &Client,
    snapshotter: &str,
    key: &str,
    mounts: Vec<Mount>,
    s: &Step,
) -> Result<(), CallError> {
    let method = format!("{DIFF}/Apply");
    let req = ApplyRequest {
        diff: Some(s.blob.clone()),
        mounts,
    };
    let resp: ApplyResponse = c.unary(&method, &req).await?;
    let got = resp.applied.map(|d| d.digest).unwrap_or_default();
    if got != s.diff_id.as_str() {
        return Err(CallError::Transport {
            method,
            message: format!(
                "layer blob {} unpacked to {got}, not to its diffID {}",
                s.blob.digest, s.diff_id
            ),
        });
    }
    let commit = CommitSnapshotRequest {
        snapshotter: snapshotter.to_string(),
        name: s.chain_id.to_string(),
        key: key.to_string(),
        labels: HashMap::new(),
    };
    c.unary::<_, Empty>(&format!("{SNAPSHOTS}/Commit"), &commit)
        .await
        .map(|_| ())
}
