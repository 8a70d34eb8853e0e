//! [`Layer`]: one file of a part's chain in a remote view, local (mapped,
//! from the cache directory) or remote (fetched a block at a time), with the
//! same owned look-ups either way.
//!
//! Invariant: both variants answer from verified bytes only (the mapped
//! view verifies each block it touches; the remote file each block it
//! fetches), and both check every end offset against its column.

use super::blocks::{Fetch, RemoteStateFile};
use crate::error::Result;
use crate::state::columns::search;
use crate::state::{Lookup, StateFileView, StateKind};
use std::path::Path;

pub(crate) use super::blocks::{Window, EXACT, SCAN, SEARCH};

/// What one layer says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Said {
    Put(Vec<u8>),
    Deleted,
    Absent,
}

/// One file of a chain.
#[derive(Debug)]
pub(crate) enum Layer {
    /// A verified local copy, memory-mapped.
    Local(StateFileView),
    /// The object, read through ranged gets.
    Remote(RemoteStateFile),
}

impl Layer {
    /// The file (a local path, or the object's key).
    pub(crate) fn path(&self) -> &Path {
        match self {
            Layer::Local(v) => v.path(),
            Layer::Remote(r) => r.path(),
        }
    }

    /// What the file holds.
    pub(crate) fn kind(&self) -> StateKind {
        match self {
            Layer::Local(v) => v.kind(),
            Layer::Remote(r) => r.kind(),
        }
    }

    /// Keys put.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Layer::Local(v) => v.len() as u64,
            Layer::Remote(r) => r.columns().keys.count,
        }
    }

    /// Keys deleted.
    pub(crate) fn deleted_len(&self) -> u64 {
        match self {
            Layer::Local(v) => v.deleted_len() as u64,
            Layer::Remote(r) => r.columns().deleted.count,
        }
    }

    /// Put key `i`.
    pub(crate) fn key(&self, i: u64, f: &Fetch<'_>, window: Window) -> Result<Vec<u8>> {
        match self {
            Layer::Local(v) => Ok(v.entry(i as usize)?.0.to_vec()),
            Layer::Remote(r) => r.item(&r.columns().keys, i, f, window),
        }
    }

    /// Value `i`.
    pub(crate) fn value(&self, i: u64, f: &Fetch<'_>, window: Window) -> Result<Vec<u8>> {
        match self {
            Layer::Local(v) => Ok(v.entry(i as usize)?.1.to_vec()),
            Layer::Remote(r) => r.item(&r.columns().values, i, f, window),
        }
    }

    /// Deleted key `j`.
    pub(crate) fn deleted_key(&self, j: u64, f: &Fetch<'_>, window: Window) -> Result<Vec<u8>> {
        match self {
            Layer::Local(v) => Ok(v.deleted_key(j as usize)?.to_vec()),
            Layer::Remote(r) => r.item(&r.columns().deleted, j, f, window),
        }
    }

    /// What the file says about `key`.
    pub(crate) fn lookup(&self, key: &[u8], f: &Fetch<'_>) -> Result<Said> {
        match self {
            Layer::Local(v) => Ok(match v.lookup(key)? {
                Lookup::Put(value) => Said::Put(value.to_vec()),
                Lookup::Deleted => Said::Deleted,
                Lookup::Absent => Said::Absent,
            }),
            Layer::Remote(_) => {
                if let Ok(i) = search(self.len() as usize, key, |i| self.key(i as u64, f, SEARCH))?
                {
                    return Ok(Said::Put(self.value(i as u64, f, EXACT)?));
                }
                let del = search(self.deleted_len() as usize, key, |j| {
                    self.deleted_key(j as u64, f, SEARCH)
                })?;
                Ok(if del.is_ok() {
                    Said::Deleted
                } else {
                    Said::Absent
                })
            }
        }
    }

    /// The first put key and the first deleted key `>= key`.
    pub(crate) fn lower_bound(&self, key: &[u8], f: &Fetch<'_>) -> Result<(u64, u64)> {
        match self {
            Layer::Local(v) => {
                let (p, d) = v.lower_bound(key)?;
                Ok((p as u64, d as u64))
            }
            Layer::Remote(_) => {
                let (Ok(p) | Err(p)) =
                    search(self.len() as usize, key, |i| self.key(i as u64, f, SEARCH))?;
                let (Ok(d) | Err(d)) = search(self.deleted_len() as usize, key, |j| {
                    self.deleted_key(j as u64, f, SEARCH)
                })?;
                Ok((p as u64, d as u64))
            }
        }
    }
}
