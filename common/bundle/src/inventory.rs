//! The inventory: what an air-gapped daemon holds — its version and store, and every image's
//! tags, ID, diffIDs and chain IDs — written by `partial-load inventory` and read by
//! `partial-save --have`, so the next export leaves out exactly what is there.
//!
//! Schema `partial-load/inventory`, version 1.

use crate::manifest::ToolInfo;
use partial_core::digest::chain_ids;
use partial_daemon::{DaemonInfo, ImageMeta};
use partial_model::have::{HaveSet, Origin};
use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "partial-load/inventory";
pub const VERSION: u32 = 1;

/// Errors reading an inventory.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error(transparent)]
    Read(#[from] partial_core::limits::CappedError),
    #[error("{file}: image {image}: chain IDs do not follow from its diffIDs")]
    BadChains { file: String, image: String },
}

/// The whole inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub schema: String,
    pub version: u32,
    pub tool: ToolInfo,
    /// RFC 3339, UTC.
    pub created: String,
    /// The daemon address the inventory was taken from.
    pub host: String,
    pub daemon: DaemonInfo,
    pub images: Vec<ImageMeta>,
}

impl Inventory {
    pub fn new(
        tool: ToolInfo,
        host: String,
        daemon: DaemonInfo,
        mut images: Vec<ImageMeta>,
    ) -> Self {
        images.sort_by(|a, b| a.id.cmp(&b.id));
        Inventory {
            schema: SCHEMA.to_string(),
            version: VERSION,
            tool,
            created: crate::manifest::now_rfc3339(),
            host,
            daemon,
            images,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses and checks an inventory; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Self, InventoryError> {
        let inv: Inventory = crate::schema::parse(bytes, file, SCHEMA, VERSION)?;
        for img in &inv.images {
            if chain_ids(&img.diff_ids) != img.chain_ids {
                return Err(InventoryError::BadChains {
                    file: file.to_string(),
                    image: img.id.to_string(),
                });
            }
        }
        Ok(inv)
    }

    /// Reads and checks the inventory file at `path` (at most [`partial_core::limits::INVENTORY`]
    /// bytes).
    pub fn read(path: &std::path::Path) -> Result<Self, InventoryError> {
        let bytes =
            partial_core::limits::read_capped(path, partial_core::limits::INVENTORY, "inventory")?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// The exit code of an error reading an inventory: 3 (bad input) for one that does not check
    /// out or is over its size cap, 1 for a file that cannot be read.
    pub fn exit_code(e: &InventoryError) -> u8 {
        match e {
            InventoryError::Read(c) => c.exit_code(),
            _ => partial_core::exit::VERIFY,
        }
    }

    /// Adds every chain of every image to `have`, with this inventory as origin.
    pub fn add_to(&self, have: &mut HaveSet, file: &str) {
        for img in &self.images {
            let name = img
                .tags
                .first()
                .cloned()
                .unwrap_or_else(|| img.id.to_string());
            have.add_image_blobs(
                &img.diff_ids,
                &img.blobs,
                &Origin::Inventory {
                    file: file.to_string(),
                    image: name,
                    image_id: img.id.clone(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_core::digest::Digest;

    fn sample() -> Inventory {
        let diffs = vec![Digest::of_bytes(b"a"), Digest::of_bytes(b"b")];
        Inventory::new(
            ToolInfo {
                name: "partial-load".into(),
                version: "0.1.0".into(),
            },
            "unix:///run/docker.sock".into(),
            partial_daemon::testutil::sample_info(),
            vec![ImageMeta::new(
                Digest::of_bytes(b"cfg"),
                vec!["base:1".into()],
                diffs,
            )],
        )
    }

    #[test]
    fn round_trip_and_have_set() {
        let inv = sample();
        let back = Inventory::parse(&inv.to_bytes(), "inv.json").unwrap();
        assert_eq!(back, inv);
        let mut have = HaveSet::new();
        back.add_to(&mut have, "inv.json");
        assert_eq!(have.len(), 2);
        let top = &inv.images[0].chain_ids[1];
        let entry = have.get(top).unwrap();
        assert_eq!(entry.origin.image(), "base:1");
        assert!(entry.origin.to_string().contains("inv.json"));
    }

    #[test]
    fn refuses_tampered_chains_and_wrong_schema() {
        let mut inv = sample();
        inv.images[0].chain_ids.swap(0, 1);
        let e = Inventory::parse(&inv.to_bytes(), "inv.json").unwrap_err();
        assert!(matches!(e, InventoryError::BadChains { .. }), "{e}");
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_bytes()).unwrap();
        v["schema"] = serde_json::json!("partial-save/bundle-manifest");
        assert!(Inventory::parse(v.to_string().as_bytes(), "inv.json").is_err());
    }
}
