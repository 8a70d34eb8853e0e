//! The README's first example as a whole program: a job that restores from
//! its newest checkpoint on every start, processes one epoch, and checkpoints
//! it with an exactly-once file sink. Run it twice and the second run goes on
//! from the first one's offsets and counts.
//!
//! Run: `cargo run --example quickstart [-- JOB_DIR]` (default: a directory
//! under the system's temporary directory).
//!
//! The part between the `README` markers is the README's code, word for word
//! (`tests/api/readme.rs` checks that).

use highwater::{
    CheckpointConfig, CheckpointRequest, FileSink, IncrementalCheckpointManager, PartInput,
    SinkCoordinator, SourcePositions, TrackedState,
};
use std::path::{Path, PathBuf};

fn main() -> highwater::Result<()> {
    let job = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("highwater-quickstart"));
    run(&job)?;
    let sink = FileSink::open(job.join("output"), "counts")?;
    let output = String::from_utf8_lossy(&sink.read_committed()?).into_owned();
    println!("published so far (in {}):\n{output}", job.display());
    Ok(())
}

fn run(job: &Path) -> highwater::Result<()> {
    // README: begin
    // On every start: open the sink and the checkpoints, then restore. Output
    // a checkpoint owes is published now; output of unfinished epochs is dropped.
    let mut sink = FileSink::open(job.join("output"), "counts")?;
    let checkpoints = CheckpointConfig::new(job.join("checkpoints"));
    let manager = IncrementalCheckpointManager::new(checkpoints)?;
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink])?;
    let (mut state, mut sources) = match coordinator.restored() {
        Some(checkpoint) => (
            TrackedState::from_snapshot(
                &coordinator
                    .manager()
                    .load_snapshot(checkpoint.id, "counts")?,
            ),
            SourcePositions::from_checkpoint(checkpoint),
        ),
        None => (TrackedState::new(), SourcePositions::new()),
    };

    // One epoch: read from the restored offset on, update state, write output.
    let next = sources.offset("words-0").unwrap_or(0); // the next record to read
    let count = |v: &[u8]| u64::from_le_bytes(v.try_into().unwrap_or_default());
    let apples = state.get(b"apple").map_or(0, count) + 1;
    state.put(b"apple".to_vec(), apples.to_le_bytes().to_vec());
    sink.write(format!("apple {apples}\n").as_bytes())?;
    sources.set_offset("words-0", next + 1)?;
    sources.advance_watermark("words-0", 1_700_000_000_000 + next as i64);

    // Close the epoch: a checkpoint of what changed, then the output is published.
    let delta = state.delta(); // only the keys changed since the last checkpoint
    coordinator.checkpoint(
        // 0: this job keeps no write-ahead log. A job that has one passes
        // wal.position() after its last Commit, and `.with_wal(&wal)`.
        CheckpointRequest::new(0)
            .with_sources(&sources)
            .with_part("counts", PartInput::Delta(&delta)),
        &mut [&mut sink],
    )?;
    state.mark_checkpointed();
    // README: end
    Ok(())
}
