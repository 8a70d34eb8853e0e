//! The command line: every command, argument and flag (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Inspect, verify and repair highwater checkpoint directories and write-ahead
/// logs. Exit codes: 0 success, 1 damage found, 2 usage error, 3 not found,
/// 4 any other error (docs/CLI.md).
#[derive(Debug, Parser)]
#[command(name = "highwater", version)]
pub struct Cli {
    /// Print one JSON document on stdout instead of tables (errors included).
    #[arg(long, global = true)]
    pub json: bool,

    /// Never draw a progress bar (one is drawn on stderr only when it is a
    /// terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// Open an encrypted job's sealed files with the key in this file (32
    /// raw bytes or 64 hex digits, as the job wrote it; docs/CLI.md,
    /// "Encrypted jobs").
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// The id of the key in `--key-file` (the id the job sealed its files
    /// under; the main example uses 1).
    #[arg(long, global = true, default_value_t = 1, value_name = "N")]
    pub key_id: u32,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List or show checkpoints.
    #[command(subcommand)]
    Checkpoints(CheckpointsCommand),
    /// Verify every checksum of every checkpoint (and of a log); exit 0 only if
    /// everything verifies. A remote location's committed checkpoints are
    /// downloaded into a temporary directory and verified.
    Verify(VerifyArgs),
    /// Dump or repair a write-ahead log.
    #[command(subcommand)]
    Wal(WalCommand),
    /// Read a checkpoint's key/value state through the zero-copy view.
    #[command(subcommand)]
    State(StateCommand),
    /// Show what recovery would do, without changing anything.
    Recover(RecoverArgs),
    /// Write a checkpoint's state or a log range to an Arrow IPC file.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Inspect an exactly-once file sink's directory.
    #[command(subcommand)]
    Sink(SinkCommand),
}

/// `export ...`
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A part of a checkpoint: key/value state as `key`/`value` columns (a
    /// delta's deletes with null values), an Arrow part with its own schema.
    State(ExportStateArgs),
    /// Log entries, one row each (position, type, key, value, commit offsets
    /// and watermark, checkpoint id, partition watermarks).
    Wal(ExportWalArgs),
}

/// `export state DIR OUT`
#[derive(Debug, Args)]
pub struct ExportStateArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: StateSource,
    /// The Arrow IPC file to write.
    pub out: PathBuf,
    /// Only what the checkpoint itself wrote for the part (its delta, or the
    /// batches it appended), not the state its chain adds up to.
    #[arg(long)]
    pub delta: bool,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `export wal WAL OUT`
#[derive(Debug, Args)]
pub struct ExportWalArgs {
    /// The write-ahead log directory.
    pub wal: PathBuf,
    /// The Arrow IPC file to write.
    pub out: PathBuf,
    /// Start at this log position (a record boundary; default: the oldest
    /// record).
    #[arg(long, value_name = "POS")]
    pub from: Option<u64>,
    /// Stop after this many entries.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// The log's maximum record size, if it was opened with a non-default one.
    #[arg(long, value_name = "BYTES")]
    pub max_record_size: Option<u32>,
}

/// `checkpoints ...`
#[derive(Debug, Subcommand)]
pub enum CheckpointsCommand {
    /// Every checkpoint: id, epoch, kind, parent, log position, watermark, size,
    /// whether it verifies, and the one recovery would use. For a remote
    /// location: its commit records (claims, checkpoints, damaged records),
    /// without downloading parts.
    Ls {
        /// The checkpoint directory, or a remote location: `s3://bucket/prefix`,
        /// `gs://…`, `az://…` (feature `object-store`) or `file:///path`.
        dir: PathBuf,
    },
    /// One checkpoint's metadata, source offsets and watermarks, parts and sizes
    /// (a remote location's is downloaded into a temporary directory first).
    Show {
        /// The checkpoint directory, or a remote location: `s3://bucket/prefix`,
        /// `gs://…`, `az://…` (feature `object-store`) or `file:///path`.
        dir: PathBuf,
        /// The checkpoint id.
        id: u64,
    },
    /// Delete one checkpoint, durably, as the job's checkpoint manager would:
    /// refused for the parent of a kept delta and while the job runs (its
    /// lock). Run it with --dry-run first.
    Delete {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The checkpoint id.
        id: u64,
        /// Only say what would be deleted and what recovery would then use.
        #[arg(long)]
        dry_run: bool,
        /// Delete it even when it is the checkpoint recovery uses now (the job
        /// then restores an older one, whose log and sink output must still
        /// fit: check with `verify --wal` and `recover --dry-run --sink`).
        #[arg(long)]
        force: bool,
    },
}

/// `sink ...`
#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// A file sink's published and staged epochs, with their sizes.
    Ls {
        /// The file sink's directory.
        dir: PathBuf,
    },
}

/// `verify DIR [--wal WAL]`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The checkpoint directory, or a remote location: `s3://bucket/prefix`,
    /// `gs://…`, `az://…` (feature `object-store`) or `file:///path`.
    pub dir: PathBuf,
    /// Also verify every segment of this write-ahead log directory.
    #[arg(long)]
    pub wal: Option<PathBuf>,
    /// The log's maximum record size, if it was opened with a non-default one.
    #[arg(long, value_name = "BYTES")]
    pub max_record_size: Option<u32>,
}

/// `wal ...`
#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// One line per entry, then what ends the log (clean end, torn tail,
    /// corruption).
    Dump(DumpArgs),
    /// Show what a repair would cut, and cut it (unless --dry-run).
    Repair(RepairArgs),
}

/// `wal dump WAL [--from POS] [--limit N]`
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The write-ahead log directory.
    pub wal: PathBuf,
    /// Start at this log position (a record boundary; default: the oldest
    /// record).
    #[arg(long, value_name = "POS")]
    pub from: Option<u64>,
    /// Stop after this many entries.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// The log's maximum record size, if it was opened with a non-default one.
    #[arg(long, value_name = "BYTES")]
    pub max_record_size: Option<u32>,
}

/// `wal repair WAL [--dry-run]`
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The write-ahead log directory.
    pub wal: PathBuf,
    /// Report what would be cut; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Which damage may be cut.
    #[arg(long, value_enum, default_value_t = Mode::TolerateTornTail)]
    pub mode: Mode,
    /// The job's checkpoint directory: a cut below the log position of the
    /// checkpoint recovery would use is refused (it would make the job
    /// unrecoverable). Required with `--mode point-in-time`.
    #[arg(long, value_name = "DIR", required_if_eq("mode", "point-in-time"))]
    pub checkpoints: Option<PathBuf>,
    /// The log's maximum record size, if it was opened with a non-default one.
    #[arg(long, value_name = "BYTES")]
    pub max_record_size: Option<u32>,
}

/// The log recovery modes (docs/RECOVERY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Cut only a torn tail of the newest segment (the default).
    TolerateTornTail,
    /// Cut nothing; any damage is an error.
    AbsoluteConsistency,
    /// Cut at the first damage anywhere, with every later segment (loses
    /// committed entries after it).
    PointInTime,
}

/// `state ...`
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// The value of one key.
    Get(GetArgs),
    /// Every key and value, in key order.
    Dump(StateDumpArgs),
}

/// Which checkpoint and part to read.
#[derive(Debug, Args)]
pub struct StateSource {
    /// The checkpoint directory, or a remote location: `s3://bucket/prefix`,
    /// `gs://…`, `az://…` (feature `object-store`) or `file:///path`
    /// (downloaded into a temporary directory first).
    pub dir: PathBuf,
    /// The checkpoint to read (default: the one recovery would use).
    #[arg(long, value_name = "ID")]
    pub checkpoint: Option<u64>,
    /// The state part to read (default: `state`, or the only key/value or
    /// blob part).
    #[arg(long, value_name = "NAME")]
    pub part: Option<String>,
}

/// `state get DIR KEY`
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: StateSource,
    /// The key (UTF-8 text, or hex digits with --hex).
    pub key: String,
    /// KEY is hex digits.
    #[arg(long)]
    pub hex: bool,
}

/// `state dump DIR [--prefix P]`
#[derive(Debug, Args)]
pub struct StateDumpArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: StateSource,
    /// Only keys starting with this prefix.
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// The prefix is hex digits.
    #[arg(long)]
    pub hex: bool,
    /// Stop after this many pairs.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// `recover DIR WAL --dry-run`
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// The write-ahead log directory.
    pub wal: PathBuf,
    /// Required: report what recovery would do without doing it. (Recovery
    /// itself belongs to the job; this tool never runs it for real.)
    #[arg(long, required = true)]
    pub dry_run: bool,
    /// The log recovery mode the job uses.
    #[arg(long, value_enum, default_value_t = Mode::TolerateTornTail)]
    pub mode: Mode,
    /// The log holds no Commit entries (a plain change log).
    #[arg(long)]
    pub no_transactions: bool,
    /// A file sink directory of the job: report what recovery would do to it
    /// (repeat for several sinks).
    #[arg(long = "sink", value_name = "DIR")]
    pub sinks: Vec<PathBuf>,
    /// The log's maximum record size, if it was opened with a non-default one.
    #[arg(long, value_name = "BYTES")]
    pub max_record_size: Option<u32>,
}
