//! `highwater`: inspect, verify, dump and repair checkpoint directories and
//! write-ahead logs (docs/CLI.md).
//!
//! Invariants:
//! - Only `wal repair` without `--dry-run` writes; every other command only
//!   reads (no lock is taken, nothing is created, cut or synced).
//! - With `--json`, stdout carries exactly one JSON document, errors included;
//!   progress bars go to stderr and only when it is a terminal.
//! - Keys, values and names are printed by one rule (`bytes::show`).

mod args;
mod bytes;
mod checkpoints;
mod output;
mod progress;
mod recover;
mod state;
mod time;
mod verify;
mod wal;

use args::{CheckpointsCommand, Cli, Command, StateCommand, WalCommand};
use clap::Parser;
use highwater::wal::DEFAULT_MAX_RECORD_SIZE;
use output::{Exit, Failure, Outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let progress = !cli.no_progress;
    let max = |m: Option<u32>| m.unwrap_or(DEFAULT_MAX_RECORD_SIZE);
    let printed = |outcome: Result<Outcome, Failure>| -> Result<Exit, Failure> {
        let outcome = outcome?;
        outcome
            .print(cli.json)
            .map_err(|e| Failure::message(format!("writing the output: {e}"), Exit::Failed))?;
        Ok(outcome.exit)
    };
    let result = match &cli.command {
        Command::Checkpoints(CheckpointsCommand::Ls { dir }) => {
            printed(checkpoints::ls(dir, progress))
        }
        Command::Checkpoints(CheckpointsCommand::Show { dir, id }) => {
            printed(checkpoints::show(dir, *id))
        }
        Command::Verify(a) => printed(verify::run(
            &a.dir,
            a.wal.as_deref(),
            max(a.max_record_size),
            progress,
        )),
        Command::Wal(WalCommand::Dump(a)) => wal::dump(
            &a.wal,
            a.from,
            a.limit,
            max(a.max_record_size),
            cli.json,
            progress,
        ),
        Command::Wal(WalCommand::Repair(a)) => printed(wal::repair(
            &a.wal,
            a.dry_run,
            a.mode,
            max(a.max_record_size),
        )),
        Command::State(StateCommand::Get(a)) => printed(state::get(&a.source, &a.key, a.hex)),
        Command::State(StateCommand::Dump(a)) => {
            state::dump(&a.source, a.prefix.as_deref(), a.hex, a.limit, cli.json)
        }
        Command::Recover(a) => printed(recover::run(a, max(a.max_record_size))),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => failure.report(cli.json).into(),
    }
}
