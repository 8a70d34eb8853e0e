//! The bytes under a [`StateFileView`](super::StateFileView): a mapped (or
//! loaded) plaintext file, or a sealed one opened block by block as reads
//! touch it (the `encryption` feature).
//!
//! Invariant: [`ViewBytes::get`] returns bytes only of a range the view
//! verified (`StateFileView::ensure`); for a sealed file, getting a range
//! first opens (authenticates and decrypts) the blocks that hold it.

use crate::error::Result;
use crate::storage::MappedFile;
use std::ops::Range;
use std::sync::Arc;

/// Where a view's plaintext comes from.
#[derive(Debug)]
pub(crate) enum ViewBytes {
    /// A mapped or loaded plaintext file.
    Mapped(Arc<dyn MappedFile>),
    /// A sealed file, opened on demand.
    #[cfg(feature = "encryption")]
    Sealed(Box<crate::crypto::LazyOpened>),
}

impl ViewBytes {
    /// Plaintext bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            ViewBytes::Mapped(m) => m.bytes().len(),
            #[cfg(feature = "encryption")]
            ViewBytes::Sealed(s) => s.len(),
        }
    }

    /// Bytes in the file (for a sealed file, more than [`len`](Self::len)).
    pub(crate) fn file_len(&self) -> u64 {
        match self {
            ViewBytes::Mapped(m) => m.bytes().len() as u64,
            #[cfg(feature = "encryption")]
            ViewBytes::Sealed(s) => s.sealed_len(),
        }
    }

    /// Plaintext `range` (bounds-checked by the caller).
    ///
    /// # Errors
    /// For a sealed file, `Io` or `AuthenticationFailed` for a block that
    /// does not open; never for a mapped one.
    pub(crate) fn get(&self, range: Range<usize>) -> Result<&[u8]> {
        match self {
            ViewBytes::Mapped(m) => Ok(&m.bytes()[range]),
            #[cfg(feature = "encryption")]
            ViewBytes::Sealed(s) => s.get(range),
        }
    }

    /// The whole plaintext while nothing else reads it (blocks of a sealed
    /// file not yet opened read as zeros).
    pub(crate) fn all_exclusive(&mut self) -> &[u8] {
        match self {
            ViewBytes::Mapped(m) => m.bytes(),
            #[cfg(feature = "encryption")]
            ViewBytes::Sealed(s) => s.all_exclusive(),
        }
    }

    /// The mapped plaintext file, unless the file is sealed.
    pub(crate) fn mapped(&self) -> Option<&[u8]> {
        match self {
            ViewBytes::Mapped(m) => Some(m.bytes()),
            #[cfg(feature = "encryption")]
            ViewBytes::Sealed(_) => None,
        }
    }
}
