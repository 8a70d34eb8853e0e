//! `export state` and `export wal`: a checkpoint's state or a log range as an
//! Arrow IPC file, for Arrow tools (pyarrow, DuckDB, Polars).
//!
//! Key/value state becomes `key`/`value` LargeBinary columns (a delta's deleted
//! keys have a null value), an Arrow part keeps its own schema, and log entries
//! become one row each (docs/FORMAT.md §5). Batches are cut at
//! [`BATCH_ROWS`] rows or [`BATCH_BYTES`] bytes, so any state or log is
//! exported in bounded memory. The file appears only when complete
//! ([`IpcFileExport`]).

use crate::args::{ExportStateArgs, ExportWalArgs};
use crate::bytes::{show_path, show_text};
use crate::output::{Exit, Failure, Human, Outcome, Problem};
use crate::state::resolve;
use crate::wal::{log_end, EndKind};
use highwater::arrow::{
    kv_schema, wal_schema, ExportSummary, IpcFileExport, KvBatchBuilder, WalBatchBuilder,
};
use highwater::storage::default_storage;
use highwater::wal::{oldest_position_with, WalReadRef};
use highwater::{CheckpointStore, WalReader};
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A batch is cut after this many rows...
const BATCH_ROWS: usize = 64 * 1024;
/// ...or this many key and value bytes.
const BATCH_BYTES: usize = 64 << 20;

/// What an export wrote.
#[derive(Debug, Serialize)]
struct Exported {
    out: PathBuf,
    /// `state` or `wal`.
    source: &'static str,
    checkpoint: Option<u64>,
    part: Option<String>,
    /// The part's kind, for state exports.
    kind: Option<&'static str>,
    delta: bool,
    rows: u64,
    batches: u64,
    bytes: u64,
    /// For log exports: what ended the range, and where.
    end: Option<EndKind>,
    end_position: Option<u64>,
    problem: Option<Problem>,
}

impl Human for Exported {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let what = match (&self.part, self.checkpoint) {
            (Some(part), Some(id)) => format!(
                "{} of part {} ({}) of checkpoint {id}",
                if self.delta { "the delta" } else { "the state" },
                show_text(part),
                self.kind.unwrap_or("?")
            ),
            _ => "log entries".to_string(),
        };
        writeln!(
            out,
            "exported {what}: {} rows in {} batches, {} bytes, to {}",
            self.rows,
            self.batches,
            self.bytes,
            show_path(&self.out)
        )?;
        if let (Some(end), Some(position)) = (self.end, self.end_position) {
            let end = serde_json::to_value(end).expect("serializes");
            writeln!(
                out,
                "log range ended: {} at position {position}",
                end.as_str().unwrap_or("?")
            )?;
        }
        if let Some(problem) = &self.problem {
            writeln!(out, "problem: {}", problem.message)?;
        }
        Ok(())
    }
}

/// Refuses to replace an existing file unless asked to.
fn check_out(out: &Path, force: bool) -> Result<(), Failure> {
    if out.exists() && !force {
        return Err(Failure::message(
            format!("{} exists; pass --force to replace it", show_path(out)),
            Exit::Usage,
        ));
    }
    Ok(())
}

/// Whether a batch of `rows` rows holding `bytes` of keys and values is
/// complete.
fn batch_full(rows: usize, bytes: usize) -> bool {
    rows >= BATCH_ROWS || bytes >= BATCH_BYTES
}

/// `export state DIR OUT [--checkpoint ID] [--part NAME] [--delta]`.
pub fn state(a: &ExportStateArgs) -> Result<Outcome, Failure> {
    check_out(&a.out, a.force)?;
    let (store, checkpoint, part) = resolve(&a.source)?;
    let layers = store.resolve_part(checkpoint, &part)?;
    let (newest_path, newest) = &layers[0];
    if a.delta && newest_path.parent() != Some(store.checkpoint_path(checkpoint).as_path()) {
        return Err(Failure::message(
            format!(
                "checkpoint {checkpoint} does not write part {}: it carries it over from an earlier checkpoint",
                show_text(&part)
            ),
            Exit::NotFound,
        ));
    }
    let summary = if newest.kind.is_arrow() {
        export_arrow(&store, checkpoint, &part, a.delta, &a.out)?
    } else {
        export_kv(&store, checkpoint, &part, a.delta, &a.out)?
    };
    Ok(Outcome::new(
        Exported {
            out: a.out.clone(),
            source: "state",
            checkpoint: Some(checkpoint),
            part: Some(part),
            kind: Some(newest.kind.name()),
            delta: a.delta,
            rows: summary.rows,
            batches: summary.batches,
            bytes: summary.bytes,
            end: None,
            end_position: None,
            problem: None,
        },
        Exit::Ok,
    ))
}

/// An Arrow part's batches (only the checkpoint's own file with `delta`).
fn export_arrow(
    store: &CheckpointStore,
    checkpoint: u64,
    part: &str,
    delta: bool,
    out: &Path,
) -> Result<ExportSummary, Failure> {
    let restored = store.open_arrow_part(checkpoint, part)?;
    let skip = if delta {
        let files = restored.files();
        files[..files.len() - 1].iter().map(|f| f.batches()).sum()
    } else {
        0
    };
    let mut export = IpcFileExport::create(out, restored.schema())?;
    export.write_all(&restored.batches()[skip..])?;
    Ok(export.finish()?)
}

/// A key/value part merged through the view, or (with `delta`) the
/// checkpoint's own file: its puts in key order, then its deletes with null
/// values.
fn export_kv(
    store: &CheckpointStore,
    checkpoint: u64,
    part: &str,
    delta: bool,
    out: &Path,
) -> Result<ExportSummary, Failure> {
    type Row<'a> = highwater::Result<(&'a [u8], Option<&'a [u8]>)>;
    let view = store.open_state_view(checkpoint, part)?;
    let source: Box<dyn Iterator<Item = Row<'_>>> = if delta {
        let own = &view.layers()[0];
        let puts = own.iter().map(|p| p.map(|(k, v)| (k, Some(v))));
        let deletes = (0..own.deleted_len()).map(|j| own.deleted_key(j).map(|k| (k, None)));
        Box::new(puts.chain(deletes))
    } else {
        Box::new(view.iter().map(|p| p.map(|(k, v)| (k, Some(v)))))
    };
    let mut export = IpcFileExport::create(out, &kv_schema())?;
    let mut rows = KvBatchBuilder::new();
    for row in source {
        let (key, value) = row?;
        rows.append(key, value);
        if batch_full(rows.len(), rows.data_bytes()) {
            export.write(&rows.finish()?)?;
        }
    }
    if !rows.is_empty() {
        export.write(&rows.finish()?)?;
    }
    Ok(export.finish()?)
}

/// `export wal WAL OUT [--from POS] [--limit N]`: every entry up to the end of
/// the log, the limit, or damage (what was read before damage is exported,
/// and the exit code is 1).
pub fn wal(a: &ExportWalArgs, max_record_size: u32) -> Result<Outcome, Failure> {
    check_out(&a.out, a.force)?;
    let storage = default_storage();
    let start = match a.from {
        Some(p) => p,
        None => oldest_position_with(storage.as_ref(), &a.wal)?,
    };
    let mut reader = WalReader::open_with(storage, &a.wal, start, max_record_size)?;
    if let Some(keys) = crate::keys::provider() {
        reader = reader.with_encryption(keys);
    }
    let mut export = IpcFileExport::create(&a.out, &wal_schema())?;
    let mut rows = WalBatchBuilder::new();
    let mut entries = 0u64;
    let (end, end_position, problem, exit) = loop {
        if a.limit.is_some_and(|n| entries >= n) {
            break (EndKind::Limit, reader.position(), None, Exit::Ok);
        }
        match reader.read_next_ref()? {
            WalReadRef::Entry { position, entry } => {
                rows.append(position, &entry);
                entries += 1;
                if batch_full(rows.len(), rows.data_bytes()) {
                    export.write(&rows.finish()?)?;
                }
            }
            WalReadRef::End(result) => break log_end(&reader, &result),
            other => {
                return Err(Failure::message(
                    format!("unexpected read result {other:?}"),
                    Exit::Failed,
                ))
            }
        }
    };
    if !rows.is_empty() {
        export.write(&rows.finish()?)?;
    }
    let summary = export.finish()?;
    Ok(Outcome::new(
        Exported {
            out: a.out.clone(),
            source: "wal",
            checkpoint: None,
            part: None,
            kind: None,
            delta: false,
            rows: summary.rows,
            batches: summary.batches,
            bytes: summary.bytes,
            end: Some(end),
            end_position: Some(end_position),
            problem,
        },
        exit,
    ))
}
