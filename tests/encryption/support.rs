//! Keys, states and byte searches the encryption tests share.

use highwater::crypto::{DataKey, KeyId, KeyProvider, StaticKeys};
use highwater::StateSnapshot;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A provider of one fresh key under `id`.
pub fn keys(id: u32) -> Arc<dyn KeyProvider> {
    Arc::new(StaticKeys::new(
        KeyId::new(id).unwrap(),
        DataKey::generate().unwrap(),
    ))
}

/// `n` pairs whose keys and values spell recognisable words.
pub fn state(n: usize, tag: &str) -> StateSnapshot {
    StateSnapshot::new(
        (0..n)
            .map(|i| {
                (
                    format!("secret-key-{i:06}").into_bytes(),
                    format!("{tag}-value-{i:06}-plaintext").into_bytes(),
                )
            })
            .collect(),
    )
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The files under `dir` in which `needle` appears.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .collect()
}

/// The part files (`part-*`) under `dir`.
pub fn part_files(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect()
}

/// Rewrites the `metadata.json` of checkpoint directory `dir` so that its
/// first part's CRC is `crc` (the envelope's body checksum recomputed):
/// what a writer of the directory who changed the part's bytes would do.
pub fn forge_part_crc(dir: &Path, crc: u32) {
    let path = dir.join("metadata.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut body = doc["body"].clone();
    body["parts"][0]["crc32c"] = crc.into();
    let body = serde_json::to_string(&body).unwrap();
    let sum = crc32c::crc32c(body.as_bytes());
    let file = format!(
        r#"{{"format":"highwater-checkpoint","version":1,"body_crc32c":{sum},"body":{body}}}"#
    );
    std::fs::write(&path, file).unwrap();
}
