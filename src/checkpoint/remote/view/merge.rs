//! [`RemoteIter`]: the resolved pairs of a remote view in key order, a merge
//! of its layers (newest first decides), optionally bounded above.
//!
//! Invariants: each layer's put and deleted cursors only move forward; for a
//! key several layers mention, the newest layer decides and every layer's
//! cursor steps past it; a deleted key is never yielded. An error ends the
//! iteration after it is yielded once.

use super::blocks::Fetch;
use super::layer::{Layer, SCAN};
use super::Shared;
use crate::error::Result;
use std::sync::Arc;

/// Iterator over a [`RemoteStateView`](super::RemoteStateView)'s pairs in
/// key order, from the layers the view had when it was created. Each item
/// is a `Result`: a block is fetched and verified when the iteration
/// reaches it. It keeps the view's cache directory locked while it lives,
/// even after the view is dropped.
#[derive(Debug)]
pub struct RemoteIter {
    shared: Arc<Shared>,
    layers: Arc<Vec<Layer>>,
    puts: Vec<u64>,
    dels: Vec<u64>,
    /// The key at each put / deleted cursor, once read.
    put_keys: Vec<Option<Vec<u8>>>,
    del_keys: Vec<Option<Vec<u8>>>,
    /// Keys from here on are not yielded.
    end: Option<Vec<u8>>,
    done: bool,
}

impl RemoteIter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        layers: Arc<Vec<Layer>>,
        start: &[u8],
        end: Option<Vec<u8>>,
    ) -> Result<Self> {
        let n = layers.len();
        let mut it = RemoteIter {
            shared,
            layers,
            puts: vec![0; n],
            dels: vec![0; n],
            put_keys: vec![None; n],
            del_keys: vec![None; n],
            end,
            done: false,
        };
        if !start.is_empty() {
            let f = it.shared.fetch();
            for (i, layer) in it.layers.iter().enumerate() {
                (it.puts[i], it.dels[i]) = layer.lower_bound(start, &f)?;
            }
        }
        Ok(it)
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let shared = self.shared.clone();
        let f: Fetch<'_> = shared.fetch();
        loop {
            // The smallest key any cursor points at; the newest layer holding
            // it decides (`Some(i)`: put by layer i, `None`: deleted).
            let mut best: Option<(Vec<u8>, Option<usize>)> = None;
            for i in 0..self.layers.len() {
                let layer = &self.layers[i];
                if self.put_keys[i].is_none() && self.puts[i] < layer.len() {
                    self.put_keys[i] = Some(layer.key(self.puts[i], &f, SCAN)?);
                }
                if self.del_keys[i].is_none() && self.dels[i] < layer.deleted_len() {
                    self.del_keys[i] = Some(layer.deleted_key(self.dels[i], &f, SCAN)?);
                }
                let candidate = match (&self.put_keys[i], &self.del_keys[i]) {
                    (Some(k), Some(d)) if d < k => Some((d, None)),
                    (Some(k), _) => Some((k, Some(i))),
                    (None, Some(d)) => Some((d, None)),
                    (None, None) => None,
                };
                if let Some((k, who)) = candidate {
                    if best.as_ref().is_none_or(|(bk, _)| k < bk) {
                        best = Some((k.clone(), who));
                    }
                }
            }
            let Some((key, who)) = best else {
                return Ok(None);
            };
            if self.end.as_ref().is_some_and(|end| key >= *end) {
                return Ok(None);
            }
            let value_at = who.map(|i| (i, self.puts[i]));
            for i in 0..self.layers.len() {
                if self.put_keys[i].as_ref() == Some(&key) {
                    self.puts[i] += 1;
                    self.put_keys[i] = None;
                }
                if self.del_keys[i].as_ref() == Some(&key) {
                    self.dels[i] += 1;
                    self.del_keys[i] = None;
                }
            }
            if let Some((i, at)) = value_at {
                let value = self.layers[i].value(at, &f, SCAN)?;
                return Ok(Some((key, value)));
            }
        }
    }
}

impl Iterator for RemoteIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(pair)) => Some(Ok(pair)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
