//! The checksummed JSON envelope of `metadata.json` and of remote commit
//! records (`docs/FORMAT.md` §3): `{"format", "version", "body_crc32c",
//! "body"}`, where the CRC32C covers the body's exact bytes in the file.
//!
//! Invariants:
//! - [`decode`] checks the format name, then the version, then the body's
//!   checksum, and only then deserialises the body: nothing is read from a
//!   body whose bytes do not match its checksum.
//! - Errors name the file (or object) and, for JSON errors and checksum
//!   mismatches, the byte offset.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    format: &'a str,
    version: u32,
    body_crc32c: u32,
    body: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    format: String,
    version: u32,
    body_crc32c: u32,
    #[serde(borrow)]
    body: &'a serde_json::value::RawValue,
}

/// `value` as the bytes of an envelope of `format` and `version`.
///
/// # Errors
/// `InvalidArgument` (for `operation`) if serde_json refuses the value.
pub(crate) fn encode<T: Serialize>(
    operation: &'static str,
    format: &str,
    version: u32,
    value: &T,
) -> Result<Vec<u8>> {
    let json_err = |e: serde_json::Error| Error::invalid_argument(operation, format!("JSON: {e}"));
    let body = serde_json::to_string_pretty(value).map_err(json_err)?;
    let raw = serde_json::value::RawValue::from_string(body).map_err(json_err)?;
    let envelope = EnvelopeOut {
        format,
        version,
        body_crc32c: crc32c::crc32c(raw.get().as_bytes()),
        body: &raw,
    };
    let mut out = serde_json::to_vec_pretty(&envelope).map_err(json_err)?;
    out.push(b'\n');
    Ok(out)
}

fn invalid(path: &Path, offset: Option<u64>, reason: impl Into<String>) -> Error {
    Error::CheckpointCorrupted {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Byte offset of a serde_json error's line and column in `text`.
fn error_offset(text: &[u8], e: &serde_json::Error) -> Option<u64> {
    if e.line() == 0 {
        return None;
    }
    let line_start = text
        .split_inclusive(|&b| b == b'\n')
        .take(e.line() - 1)
        .map(<[u8]>::len)
        .sum::<usize>();
    Some((line_start + e.column().saturating_sub(1)) as u64)
}

/// The body of the envelope in `bytes` (read from `path`), verified and
/// deserialised; `what` names the body in messages ("metadata").
///
/// # Errors
/// `CheckpointCorrupted` naming `path` (with the byte offset for JSON errors
/// and checksum mismatches), `UnsupportedVersion`.
pub(crate) fn decode<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    format: &str,
    version: u32,
    what: &str,
) -> Result<T> {
    let envelope: EnvelopeIn<'_> = serde_json::from_slice(bytes).map_err(|e| {
        invalid(
            path,
            error_offset(bytes, &e),
            format!("not valid {what} JSON: {e}"),
        )
    })?;
    if envelope.format != format {
        return Err(invalid(
            path,
            None,
            format!("format is {:?}, expected {format:?}", envelope.format),
        ));
    }
    if envelope.version != version {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: envelope.version,
            supported: version,
        });
    }
    let body = envelope.body.get();
    let body_offset = (body.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize) as u64;
    let actual = crc32c::crc32c(body.as_bytes());
    if actual != envelope.body_crc32c {
        return Err(invalid(
            path,
            Some(body_offset),
            format!(
                "body checksum mismatch: expected {:#010x}, found {actual:#010x}",
                envelope.body_crc32c
            ),
        ));
    }
    serde_json::from_str(body).map_err(|e| {
        invalid(
            path,
            error_offset(body.as_bytes(), &e).map(|o| o + body_offset),
            format!("{what} body is not what it should hold: {e}"),
        )
    })
}
