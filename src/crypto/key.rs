//! Data keys, key ids and [`KeyProvider`]: where the keys that seal files
//! come from (docs/FORMAT.md §8, "Keys").
//!
//! Invariants:
//! - A [`DataKey`]'s bytes are never printed (`Debug` shows only that it is
//!   a key) and are overwritten with zeros when it is dropped.
//! - Key id 0 does not exist: a header holding it is damage.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The length of a data key: AES-256.
pub const KEY_LEN: usize = 32;
/// The most bytes a key file is read for (a hex key with whitespace).
const MAX_KEY_FILE: u64 = 4096;

/// The name of a data key, stored in every sealed file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    /// Key id `id`.
    ///
    /// # Errors
    /// `InvalidConfig` for 0.
    pub fn new(id: u32) -> Result<Self> {
        if id == 0 {
            return Err(Error::InvalidConfig {
                setting: "key_id",
                reason: "key id 0 is reserved".into(),
            });
        }
        Ok(KeyId(id))
    }

    /// The number.
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A 256-bit data key.
#[derive(Clone)]
pub struct DataKey(Box<[u8; KEY_LEN]>);

impl DataKey {
    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(Box::new(bytes))
    }

    /// A new random key (the operating system's generator).
    ///
    /// # Errors
    /// `Io` when the generator cannot be read.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; KEY_LEN];
        super::seal::random(&mut bytes, "generate a data key")?;
        Ok(Self::from_bytes(bytes))
    }

    /// A key from its 32 bytes, or their 64 hex digits (whitespace around
    /// them ignored): the contents of a key file.
    ///
    /// 32 bytes that are all printable text (a password, half of a hex
    /// key) are refused: 32 random bytes are all printable once in 10^13.
    ///
    /// # Errors
    /// `InvalidConfig` for anything else (the message never holds the
    /// bytes).
    pub fn parse(text: &[u8]) -> Result<Self> {
        if text.len() == KEY_LEN && text.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(Error::InvalidConfig {
                setting: "key",
                reason: format!(
                    "these {KEY_LEN} bytes are text (a password, or a hex key cut short), \
                     not a random key; a key is {KEY_LEN} random bytes or {} hex digits",
                    2 * KEY_LEN
                ),
            });
        }
        if text.len() == KEY_LEN {
            let mut bytes = [0u8; KEY_LEN];
            bytes.copy_from_slice(text);
            return Ok(Self::from_bytes(bytes));
        }
        let trimmed = text.trim_ascii();
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        if trimmed.len() == 2 * KEY_LEN {
            let mut bytes = [0u8; KEY_LEN];
            let mut ok = true;
            for (i, b) in bytes.iter_mut().enumerate() {
                match (hex(trimmed[2 * i]), hex(trimmed[2 * i + 1])) {
                    (Some(h), Some(l)) => *b = h << 4 | l,
                    _ => ok = false,
                }
            }
            if ok {
                return Ok(Self::from_bytes(bytes));
            }
        }
        Err(Error::InvalidConfig {
            setting: "key",
            reason: format!(
                "a key is {KEY_LEN} raw bytes or {} hex digits; this is {} bytes",
                2 * KEY_LEN,
                text.len()
            ),
        })
    }

    /// The key in `path` ([`parse`](Self::parse)).
    ///
    /// # Errors
    /// `Io` naming the file; `InvalidConfig` for contents that are no key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // A key file is small: read at most a little more than the longest
        // key, so a path pointed at a large file by mistake costs nothing.
        let mut text = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_KEY_FILE + 1), &mut text)
            })
            .map_err(|source| Error::Io {
                operation: "read a key file",
                path: path.to_path_buf(),
                source,
            })?;
        if text.len() as u64 > MAX_KEY_FILE {
            wipe(&mut text);
            return Err(Error::InvalidConfig {
                setting: "key",
                reason: format!(
                    "{} is over {MAX_KEY_FILE} bytes: not a key file",
                    path.display()
                ),
            });
        }
        let key = Self::parse(&text);
        wipe(&mut text);
        key
    }

    /// The key in environment variable `var` (hex digits).
    ///
    /// # Errors
    /// `InvalidConfig` when it is unset or no key.
    pub fn from_env(var: &str) -> Result<Self> {
        let text = std::env::var(var).map_err(|_| Error::InvalidConfig {
            setting: "key",
            reason: format!("environment variable {var} is not set"),
        })?;
        Self::parse(text.as_bytes())
    }

    /// The key's 64 hex digits (to write a key file).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Overwrites `bytes` with zeros in a way the compiler keeps.
#[allow(unsafe_code)]
fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to a byte;
        // the volatile write keeps the compiler from dropping the wipe.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

impl Drop for DataKey {
    fn drop(&mut self) {
        wipe(&mut self.0[..]);
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Where data keys come from: a file, the environment, or the caller's KMS.
///
/// New files are sealed with [`current_key`](Self::current_key); a file is
/// opened with the key its header names ([`key`](Self::key)). Rotating keys
/// is giving a provider a new current key while it still answers for the
/// old ones.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The key new files are sealed with, and its id.
    ///
    /// # Errors
    /// Any error of the provider (a KMS that does not answer).
    fn current_key(&self) -> Result<(KeyId, DataKey)>;

    /// The key with id `id` (`None`: the provider does not have it).
    ///
    /// # Errors
    /// Any error of the provider.
    fn key(&self, id: KeyId) -> Result<Option<DataKey>>;
}

/// A [`KeyProvider`] holding its keys in memory: a current key, and retired
/// ones that still open old files.
///
/// ```
/// use highwater::crypto::{DataKey, KeyId, KeyProvider, StaticKeys};
/// let old = DataKey::generate()?;
/// let keys = StaticKeys::new(KeyId::new(2)?, DataKey::generate()?)
///     .with_retired(KeyId::new(1)?, old)?;
/// assert_eq!(keys.current_key()?.0, KeyId::new(2)?);
/// assert!(keys.key(KeyId::new(1)?)?.is_some()); // old files stay readable
/// # Ok::<(), highwater::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StaticKeys {
    current: KeyId,
    keys: BTreeMap<KeyId, DataKey>,
}

impl StaticKeys {
    /// New files are sealed with `key`, named `id`.
    pub fn new(id: KeyId, key: DataKey) -> Self {
        StaticKeys {
            current: id,
            keys: BTreeMap::from([(id, key)]),
        }
    }

    /// Also opens files sealed with `key` (named `id`); the current key
    /// stays the current one.
    ///
    /// # Errors
    /// `InvalidConfig` when `id` already names a key (the current one or a
    /// retired one): one id never names two keys, and a rotation that
    /// forgot to give the new key a new id is refused here rather than
    /// found later as old files that fail authentication.
    pub fn with_retired(mut self, id: KeyId, key: DataKey) -> Result<Self> {
        if self.keys.contains_key(&id) {
            let whose = if id == self.current {
                " (it is the current key's)"
            } else {
                ""
            };
            return Err(Error::InvalidConfig {
                setting: "key_id",
                reason: format!("key id {id} is given twice{whose}; every key needs its own id"),
            });
        }
        self.keys.insert(id, key);
        Ok(self)
    }
}

impl KeyProvider for StaticKeys {
    fn current_key(&self) -> Result<(KeyId, DataKey)> {
        Ok((self.current, self.keys[&self.current].clone()))
    }

    fn key(&self, id: KeyId) -> Result<Option<DataKey>> {
        Ok(self.keys.get(&id).cloned())
    }
}
