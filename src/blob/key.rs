//! [`BlobKey`]: a validated object key.
//!
//! Invariant: a `BlobKey` is never empty, never starts or ends with `/`, has
//! no empty segment (`a//b`), no segment that starts with `.` (so no `.`, no
//! `..`, and no name that collides with a backend's hidden temporary files),
//! at most [`MAX_KEY_BYTES`] bytes, and only the characters `A-Z a-z 0-9 - _
//! . = +` and `/` (the segment separator). Such a key means the same object on
//! every backend (no percent-encoding differences between S3, GCS, Azure and a
//! directory), and joined to a directory or a prefix it can never escape it.

use super::error::{BlobError, BlobResult};
use std::fmt;

/// The longest key accepted, in bytes (S3's limit is 1024; a prefix in the
/// location takes some of it).
pub const MAX_KEY_BYTES: usize = 512;

/// An object key, validated when it is made (module docs: the rules).
///
/// # Examples
/// ```
/// use highwater::blob::BlobKey;
/// let key = BlobKey::new("job-1/commits/00000000000000000007")?;
/// assert_eq!(key.as_str(), "job-1/commits/00000000000000000007");
/// assert!(BlobKey::new("job-1/../other").is_err());
/// assert!(BlobKey::new("/abs").is_err());
/// # Ok::<(), highwater::blob::BlobError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Validates `key`.
    ///
    /// # Errors
    /// [`BlobError::InvalidKey`] naming the key and the rule it breaks.
    pub fn new(key: impl Into<String>) -> BlobResult<Self> {
        let key = key.into();
        match problem(&key) {
            None => Ok(BlobKey(key)),
            Some(reason) => Err(BlobError::InvalidKey { key, reason }),
        }
    }

    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// This key followed by `/` and `child` (which must itself be a valid key).
    ///
    /// # Errors
    /// [`BlobError::InvalidKey`] if `child` is not a valid key or the result is
    /// too long.
    pub fn join(&self, child: &str) -> BlobResult<Self> {
        BlobKey::new(format!("{}/{child}", self.0))
    }

    /// True when `self` lies under `prefix` (segment-wise: `a/b` is under `a`,
    /// `ab` is not, and a key is not under itself).
    pub fn is_under(&self, prefix: &BlobKey) -> bool {
        self.0.len() > prefix.0.len()
            && self.0.starts_with(&prefix.0)
            && self.0.as_bytes()[prefix.0.len()] == b'/'
    }
}

/// What is wrong with `key`, if anything.
fn problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("the key is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Some("the key is longer than 512 bytes");
    }
    if key.starts_with('/') {
        return Some("the key starts with '/'");
    }
    if key.ends_with('/') {
        return Some("the key ends with '/'");
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.=+/".contains(*c)))
    {
        return Some(if c.is_control() {
            "the key holds a control character"
        } else {
            "the key holds a character outside A-Z a-z 0-9 - _ . = + /"
        });
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Some("the key has an empty segment ('//')");
        }
        if segment == ".." || segment == "." {
            return Some("the key has a '.' or '..' segment");
        }
        if segment.starts_with('.') {
            return Some("a segment starts with '.' (reserved for temporary files)");
        }
    }
    None
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl AsRef<str> for BlobKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        for good in ["a", "a/b", "job-1/part=3/x.hwstate", "A_b+c=d.e"] {
            assert!(BlobKey::new(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "..", "a/../b", "./a", "a/.tmp", "a b", "a\\b", "a\0b", "é",
        ] {
            assert!(
                matches!(BlobKey::new(bad), Err(BlobError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
        assert!(BlobKey::new("a".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(BlobKey::new("a".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn under() {
        let a = BlobKey::new("a").unwrap();
        assert!(BlobKey::new("a/b").unwrap().is_under(&a));
        assert!(!BlobKey::new("ab").unwrap().is_under(&a));
        assert!(!a.is_under(&a));
    }
}
