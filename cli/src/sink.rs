//! `sink ls DIR`: a file sink's published and staged epochs; and what
//! recovery would do to a sink, for `recover --dry-run --sink DIR`.

use crate::output::{Exit, Failure, Human, Outcome, Table};
use highwater::{FileSink, IncrementalCheckpointMetadata};
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;

#[derive(Debug, Serialize)]
struct EpochFile {
    epoch: u64,
    file: String,
    bytes: u64,
}

/// What `sink ls` found.
#[derive(Debug, Serialize)]
struct Listing {
    dir: String,
    published: Vec<EpochFile>,
    staged: Vec<EpochFile>,
}

fn listing(dir: &Path) -> Result<Listing, Failure> {
    let contents = FileSink::contents(dir)?;
    let rows = |files: &[highwater::sink::SinkEpochFile]| {
        files
            .iter()
            .map(|f| EpochFile {
                epoch: f.epoch,
                file: f.path.display().to_string(),
                bytes: f.bytes,
            })
            .collect()
    };
    Ok(Listing {
        dir: dir.display().to_string(),
        published: rows(&contents.published),
        staged: rows(&contents.staged),
    })
}

/// `sink ls DIR`.
pub fn ls(dir: &Path) -> Result<Outcome, Failure> {
    Ok(Outcome::new(listing(dir)?, Exit::Ok))
}

impl Human for Listing {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "file sink {}: {} published epochs, {} staged",
            self.dir,
            self.published.len(),
            self.staged.len()
        )?;
        let mut t = Table::new(&["EPOCH", "STATE", "BYTES", "FILE"]);
        for (state, files) in [("published", &self.published), ("staged", &self.staged)] {
            for f in files {
                t.row(vec![
                    f.epoch.to_string(),
                    state.to_string(),
                    f.bytes.to_string(),
                    f.file.clone(),
                ]);
            }
        }
        t.write(out)
    }
}

/// What recovery would do to one file sink, restoring `checkpoint`.
#[derive(Debug, Serialize)]
pub struct SinkPlan {
    dir: String,
    /// Epochs whose output is published.
    published: Vec<u64>,
    /// Staged epochs the restored checkpoint owes: recovery publishes them.
    to_publish: Vec<u64>,
    /// Staged epochs after the restored one: recovery aborts (removes) them.
    to_abort: Vec<u64>,
    /// Why recovery would refuse this sink, if it would.
    refusal: Option<String>,
}

impl SinkPlan {
    /// What `SinkCoordinator::recover` would do to the sink in `dir`.
    pub fn of(
        dir: &Path,
        checkpoint: Option<&IncrementalCheckpointMetadata>,
    ) -> Result<Self, Failure> {
        let l = listing(dir)?;
        let restored = checkpoint.map_or(0, |c| c.epoch);
        let owed = |epoch: u64| {
            checkpoint.is_some_and(|c| c.sink_transactions.iter().any(|t| t.epoch == epoch))
        };
        let published: Vec<u64> = l.published.iter().map(|f| f.epoch).collect();
        let staged: Vec<u64> = l.staged.iter().map(|f| f.epoch).collect();
        let refusal = if let Some(&ahead) = published.iter().find(|&&e| e > restored) {
            Some(format!(
                "published output of epoch {ahead} is after the restored epoch {restored}: recovery refuses (SinkAheadOfCheckpoint; docs/OPERATIONS.md, \"A sink ahead of its checkpoint\")"
            ))
        } else {
            staged
                .iter()
                .find(|&&e| e <= restored && !owed(e))
                .map(|orphan| format!(
                    "output staged for epoch {orphan}, which the restored checkpoint covers, is named by no transaction: recovery refuses (SinkTransactionInvalid; docs/OPERATIONS.md, \"Staged output nobody owns\")"
                ))
        };
        Ok(SinkPlan {
            dir: l.dir,
            to_publish: staged
                .iter()
                .copied()
                .filter(|&e| e <= restored && owed(e))
                .collect(),
            to_abort: staged.iter().copied().filter(|&e| e > restored).collect(),
            published,
            refusal,
        })
    }

    /// Whether recovery would refuse the sink.
    pub fn refused(&self) -> bool {
        self.refusal.is_some()
    }

    /// One line for the recovery plan.
    pub fn line(&self) -> String {
        let list = |v: &[u64]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            }
        };
        match &self.refusal {
            Some(why) => format!("{}: {why}", self.dir),
            None => format!(
                "{}: published epochs {}; would publish {}; would abort {}",
                self.dir,
                list(&self.published),
                list(&self.to_publish),
                list(&self.to_abort)
            ),
        }
    }
}
