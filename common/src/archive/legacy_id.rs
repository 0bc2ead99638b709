//! Identifying a legacy `<v1id>/` folder from its own `json` file, without `manifest.json`.
//!
//! The daemon names each folder by a sha256 over a JSON object that the folder's `json` nearly
//! spells out (see the project's docker-archives notes): take the file's top-level object, drop
//! `id`; for every layer but the top one also drop `os`; turn `parent` (bare hex) into
//! `sha256:<hex>`; add `layer_id` = the chain ID; serialise with sorted top-level keys and every
//! value kept byte for byte. The folder name matches exactly when the candidate chain ID is right,
//! whatever the daemon's time zone, so no guessing of blank configs is needed.

use crate::digest::Digest;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// The pieces of a folder's `json` needed to test candidate chain IDs.
pub(crate) struct V1Json {
    /// Top-level keys except `id`, `layer_id` and `os`, values as raw JSON text, `parent` rewritten.
    fields: BTreeMap<String, String>,
    /// The raw `os` value, if any.
    os: Option<String>,
}

impl V1Json {
    /// Parses a folder's `json`; `None` if it is not a JSON object.
    pub fn parse(bytes: &[u8]) -> Option<V1Json> {
        let map: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(bytes).ok()?;
        let mut fields = BTreeMap::new();
        let mut os = None;
        for (k, v) in map {
            match k.as_str() {
                "id" | "layer_id" => {}
                "os" => os = Some(v.get().to_string()),
                "parent" => {
                    let hex: String = serde_json::from_str(v.get()).ok()?;
                    let full = if hex.starts_with("sha256:") {
                        hex
                    } else {
                        format!("sha256:{hex}")
                    };
                    fields.insert(k, serde_json::to_string(&full).ok()?);
                }
                _ => {
                    fields.insert(k, v.get().to_string());
                }
            }
        }
        Some(V1Json { fields, os })
    }

    /// The serialisation around the `layer_id` value: (bytes before it, bytes after it).
    fn around_layer_id(&self, with_os: bool) -> (Vec<u8>, Vec<u8>) {
        let mut all: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if with_os {
            if let Some(os) = &self.os {
                all.push(("os", os));
            }
        }
        all.sort_by(|a, b| a.0.cmp(b.0));
        let entry = |(k, v): &(&str, &str)| {
            // Keys are plain ASCII names; serde_json quotes them as Go does.
            format!("{}:{v}", serde_json::to_string(k).unwrap_or_default())
        };
        let before: Vec<String> = all.iter().filter(|e| e.0 < "layer_id").map(entry).collect();
        let after: Vec<String> = all.iter().filter(|e| e.0 > "layer_id").map(entry).collect();
        let mut pre = String::from("{");
        for b in &before {
            pre.push_str(b);
            pre.push(',');
        }
        pre.push_str("\"layer_id\":");
        let mut post = String::new();
        for a in &after {
            post.push(',');
            post.push_str(a);
        }
        post.push('}');
        (pre.into_bytes(), post.into_bytes())
    }

    /// The v1id this json gives for `chain`, with or without its `os` key.
    #[cfg(test)]
    pub fn v1id(&self, chain: &Digest, with_os: bool) -> String {
        let (pre, post) = self.around_layer_id(with_os);
        let mut h = Sha256::new();
        h.update(&pre);
        h.update(format!("\"{chain}\"").as_bytes());
        h.update(&post);
        hex::encode(h.finalize())
    }

    /// The candidate chain ID whose v1id equals `folder`, if any. The hash state over the bytes
    /// before `layer_id` is computed once, so each candidate costs only a short tail.
    pub fn identify<'a>(
        &self,
        folder: &str,
        candidates: impl IntoIterator<Item = &'a Digest>,
    ) -> Option<Digest> {
        let Ok(want) = hex::decode(folder) else {
            return None;
        };
        let variants: Vec<(Sha256, Vec<u8>)> = [false, true]
            .into_iter()
            .filter(|with_os| !with_os || self.os.is_some())
            .map(|with_os| {
                let (pre, post) = self.around_layer_id(with_os);
                let mut h = Sha256::new();
                h.update(&pre);
                (h, post)
            })
            .collect();
        for c in candidates {
            let quoted = format!("\"{c}\"");
            for (state, post) in &variants {
                let mut h = state.clone();
                h.update(quoted.as_bytes());
                h.update(post);
                if h.finalize().as_slice() == want.as_slice() {
                    return Some(c.clone());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::parse(s).unwrap()
    }

    // Real `json` files from a Debian docker.io 20.10 daemon (see fixtures/).
    #[test]
    fn identifies_real_daemon_folders() {
        let cases = [
            (
                &include_bytes!("fixtures/shanghai-e1c282ccc4ad.json")[..],
                "e1c282ccc4adb217ed477846d4c396d2f71a7e2c4322d4db0f4fa55f7777ecaf",
                "sha256:de64487f09430f74b490ea7df3d34b21c07477cca20f0af23ad170b7165d4bd5",
            ),
            (
                &include_bytes!("fixtures/utc-top-33d5075564a0.json")[..],
                "33d5075564a00820afd6038db48a52a834744de3b205ab7f9516682d573c0688",
                "sha256:053fc62c72f5b6b37c95d8fd814a6852f26c094cf72f0bd18bee1d830ff1a63f",
            ),
            (
                &include_bytes!("fixtures/utc-bottom-5dfa6fbfe670.json")[..],
                "5dfa6fbfe67070317b1b24f32f48a7bb178da3f2ef0942c3553270a02e1d3bf0",
                "sha256:c45063f88d6753d36a8bb8d21fb5cb61a71110b8abf1d8a41dea95a009eaf04c",
            ),
        ];
        let all: Vec<Digest> = cases.iter().map(|c| d(c.2)).collect();
        for (json, folder, chain) in cases {
            let v = V1Json::parse(json).unwrap();
            assert_eq!(v.identify(folder, &all), Some(d(chain)), "{folder}");
            // A wrong chain never matches.
            let others: Vec<Digest> = all
                .iter()
                .filter(|c| c.as_str() != chain)
                .cloned()
                .collect();
            assert_eq!(v.identify(folder, &others), None);
            let with_os = v.v1id(&d(chain), true) == folder;
            assert!(with_os || v.v1id(&d(chain), false) == folder);
        }
        // Among thousands of candidates, the right one is found (quickly: one tail hash each).
        let many: Vec<Digest> = (0..5000u32)
            .map(|i| Digest::of_bytes(&i.to_le_bytes()))
            .chain(all.iter().cloned())
            .collect();
        let v = V1Json::parse(cases[0].0).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(v.identify(cases[0].1, &many), Some(d(cases[0].2)));
        assert!(t.elapsed().as_secs() < 5);
    }
}
