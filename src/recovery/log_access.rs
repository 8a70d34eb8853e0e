//! [`LogAccess`]: how one recovery call may touch the log, decided once from
//! the configuration's `repair_wal` and `dry_run` (`dry_run` wins).

use super::config::RecoveryConfig;

/// How recovery may touch the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogAccess {
    /// Take the log's lock, cut a torn tail and the uncommitted tail, durably
    /// (`repair_wal`, the default).
    Repair,
    /// Never write; make what the log holds durable before reading it, so
    /// nothing is returned that a crash could still take away (`repair_wal`
    /// off).
    ReadOnly,
    /// Never write, not even an fsync; report what a repair would cut and read
    /// the log as if it had (`dry_run`).
    DryRun,
}

impl LogAccess {
    /// The access `cfg` asks for.
    pub(crate) fn of(cfg: &RecoveryConfig) -> Self {
        match (cfg.dry_run, cfg.repair_wal) {
            (true, _) => LogAccess::DryRun,
            (false, true) => LogAccess::Repair,
            (false, false) => LogAccess::ReadOnly,
        }
    }

    /// Whether recovery may write (repair, release, cut).
    pub(crate) fn writes(self) -> bool {
        self == LogAccess::Repair
    }
}
