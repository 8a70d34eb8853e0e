//! `highwater`: inspect, verify, dump, export and repair checkpoint
//! directories and write-ahead logs (docs/CLI.md).
//!
//! Invariants:
//! - Only `wal repair` and `checkpoints delete` without `--dry-run` write to a
//!   log or checkpoint directory (under its lock); `export` writes only its
//!   output file; every other command only reads (no lock is taken, nothing is
//!   created, cut or synced).
//! - With `--json`, stdout carries exactly one JSON document, errors included;
//!   progress bars go to stderr and only when it is a terminal.
//! - Keys, values and names are printed by one rule (`bytes::show`).

mod args;
mod bytes;
mod checkpoints;
mod delete;
mod export;
mod keys;
mod output;
mod paths;
mod progress;
mod recover;
mod remote;
mod remote_ls;
mod remote_read;
mod sink;
mod state;
mod time;
mod verify;
mod wal;

use args::{
    CheckpointsCommand, Cli, Command, ExportCommand, ExportStateArgs, SinkCommand, StateCommand,
    StateSource, WalCommand,
};
use clap::Parser;
use highwater::wal::DEFAULT_MAX_RECORD_SIZE;
use output::{Exit, Failure, Outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Some(file) = &cli.key_file {
        if let Err(e) = keys::load(file, cli.key_id) {
            return Failure::of(&e).report(cli.json).into();
        }
    }
    let progress = !cli.no_progress;
    let max = |m: Option<u32>| m.unwrap_or(DEFAULT_MAX_RECORD_SIZE);
    let printed = |outcome: Result<Outcome, Failure>| -> Result<Exit, Failure> {
        let outcome = outcome?;
        outcome.print(cli.json).map_err(|e| Failure::output(&e))?;
        Ok(outcome.exit)
    };
    let result = check_paths(&cli.command).and_then(|()| match &cli.command {
        Command::Checkpoints(CheckpointsCommand::Ls { dir }) => match remote::location(dir) {
            Some(url) => printed(remote_ls::ls(url)),
            None => printed(checkpoints::ls(dir, progress)),
        },
        Command::Checkpoints(CheckpointsCommand::Show { dir, id }) => match remote::location(dir) {
            Some(url) => printed(remote_read::show(url, *id)),
            None => printed(checkpoints::show(dir, *id)),
        },
        Command::Checkpoints(CheckpointsCommand::Delete {
            dir,
            id,
            dry_run,
            force,
        }) => printed(delete::run(dir, *id, *dry_run, *force)),
        Command::Sink(SinkCommand::Ls { dir }) => printed(sink::ls(dir)),
        Command::Verify(a) => printed(match remote::location(&a.dir) {
            Some(url) => {
                remote_read::verify(url, a.wal.as_deref(), max(a.max_record_size), progress)
            }
            None => verify::run(&a.dir, a.wal.as_deref(), max(a.max_record_size), progress),
        }),
        Command::Wal(WalCommand::Dump(a)) => wal::dump(
            &a.wal,
            a.from,
            a.limit,
            max(a.max_record_size),
            cli.json,
            progress,
        ),
        Command::Wal(WalCommand::Repair(a)) => printed(wal::repair(a, max(a.max_record_size))),
        Command::State(StateCommand::Get(a)) => printed(remote_read::with_source(&a.source, |s| {
            state::get(s, &a.key, a.hex)
        })),
        Command::State(StateCommand::Dump(a)) => remote_read::with_source(&a.source, |s| {
            state::dump(s, a.prefix.as_deref(), a.hex, a.limit, cli.json)
        }),
        Command::Recover(a) => printed(recover::run(a, max(a.max_record_size))),
        Command::Export(ExportCommand::State(a)) => {
            printed(remote_read::with_source(&a.source, |source| {
                export::state(&ExportStateArgs {
                    source: StateSource {
                        dir: source.dir.clone(),
                        checkpoint: source.checkpoint,
                        part: source.part.clone(),
                    },
                    out: a.out.clone(),
                    delta: a.delta,
                    force: a.force,
                })
            }))
        }
        Command::Export(ExportCommand::Wal(a)) => printed(export::wal(a, max(a.max_record_size))),
    });
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => failure.report(cli.json).into(),
    }
}

/// Every directory a command reads must exist (docs/CLI.md, exit code 3): the
/// library reads a missing directory as empty, which would make a typo pass.
/// A remote location is checked when it is opened (`remote::Remote::open`),
/// and refused by the commands that take only a local directory.
fn check_paths(command: &Command) -> Result<(), Failure> {
    let optional = |dir: Option<&std::path::Path>,
                    check: fn(&std::path::Path) -> Result<(), Failure>| {
        dir.map_or(Ok(()), check)
    };
    let checkpoints = |dir: &std::path::Path| match remote::location(dir) {
        Some(_) => Ok(()),
        None => paths::checkpoint_dir(dir),
    };
    let local_only = |command: &str, dir: &std::path::Path| match remote::location(dir) {
        Some(url) => Err(remote::refused(command, url)),
        None => Ok(()),
    };
    match command {
        Command::Checkpoints(CheckpointsCommand::Ls { dir })
        | Command::Checkpoints(CheckpointsCommand::Show { dir, .. }) => checkpoints(dir),
        Command::Checkpoints(CheckpointsCommand::Delete { dir, .. }) => {
            local_only("checkpoints delete", dir)?;
            paths::checkpoint_dir(dir)
        }
        Command::Sink(SinkCommand::Ls { dir }) => paths::existing_dir(dir),
        Command::Verify(a) => {
            optional(a.wal.as_deref(), paths::wal_dir)?;
            checkpoints(&a.dir)
        }
        Command::Wal(WalCommand::Dump(a)) => paths::wal_dir(&a.wal),
        Command::Wal(WalCommand::Repair(a)) => {
            paths::wal_dir(&a.wal)?;
            if let Some(dir) = a.checkpoints.as_deref() {
                local_only("wal repair --checkpoints", dir)?;
            }
            optional(a.checkpoints.as_deref(), paths::existing_dir)
        }
        Command::State(StateCommand::Get(a)) => checkpoints(&a.source.dir),
        Command::State(StateCommand::Dump(a)) => checkpoints(&a.source.dir),
        Command::Recover(a) => {
            local_only("recover", &a.dir)?;
            paths::existing_dir(&a.dir)?;
            a.sinks.iter().try_for_each(|d| paths::existing_dir(d))?;
            paths::wal_dir(&a.wal)
        }
        Command::Export(ExportCommand::State(a)) => checkpoints(&a.source.dir),
        Command::Export(ExportCommand::Wal(a)) => paths::wal_dir(&a.wal),
    }
}

/// A command line clap refused: its help and version requests print as usual;
/// with `--json` anywhere on the line, the error is a JSON document on stdout.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !std::env::args().any(|a| a == "--json") {
        e.exit();
    }
    let message = e.render().to_string();
    Failure::message(message.trim().to_string(), Exit::Usage)
        .report(true)
        .into()
}
