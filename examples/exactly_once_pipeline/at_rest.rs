//! Encryption at rest for the example (`--encrypt`, `--key-file`,
//! `--check-no-plaintext`), shared with tests/sink/sealed_pipeline.rs: the
//! job's key file, and the search of a job directory for the input's words.
//!
//! A word is searched as the plaintext writes it, with its delimiters: in
//! the output's lines (` <word> `) and the state's keys (`0/<word>`: a
//! window's start, a multiple of 1000, then the word). A bare 3-letter word
//! would turn up by chance in a few megabytes of ciphertext; these 5- to
//! 8-byte patterns do not (about once in 10^5 runs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Writes a new random key (64 hex digits) to `path`, readable by its owner
/// only (mode 0600), refusing to overwrite a file there.
///
/// # Errors
/// The generator's error; the file's, naming it.
#[cfg(feature = "encryption")]
pub fn write_new_key(path: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = highwater::crypto::DataKey::generate().map_err(|e| e.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(key.to_hex().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Every (file, pattern) under `dir` where a pattern of one of `words`
/// appears, in every byte of every file (subdirectories included).
///
/// # Errors
/// A directory or file that cannot be read, naming it.
pub fn plaintext_hits(dir: &Path, words: &[&str]) -> Result<Vec<(PathBuf, String)>, String> {
    let patterns: Vec<Vec<u8>> = words
        .iter()
        .flat_map(|w| [format!(" {w} "), format!("0/{w}")])
        .map(String::into_bytes)
        .collect();
    let mut hits = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", d.display()))?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            for p in &patterns {
                if bytes.windows(p.len()).any(|w| w == p.as_slice()) {
                    hits.push((path.clone(), String::from_utf8_lossy(p).into_owned()));
                }
            }
        }
    }
    hits.sort();
    Ok(hits)
}
