//! How results reach the user: aligned tables and lines for people, one JSON
//! document for machines, and the exit code.
//!
//! Every command builds a report value that is both `Serialize` (for `--json`)
//! and [`Human`] (for tables), so the two outputs always say the same thing.

use crate::bytes::sanitize;
use serde::Serialize;
use std::io::{self, Write};
use std::process::ExitCode;

/// Exit codes (docs/CLI.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything read verified; the command did what it was asked.
    Ok = 0,
    /// Damage was found (or the action is refused because of damage).
    Damage = 1,
    /// The command line is wrong.
    Usage = 2,
    /// The key, checkpoint or part asked for does not exist.
    NotFound = 3,
    /// Anything else: I/O errors, a locked log, bad arguments found late.
    Failed = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A report rendered for people.
pub trait Human {
    /// Writes the report as text.
    ///
    /// # Errors
    /// Write errors of `out`.
    fn human(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// A command's result: its report and its exit code.
pub struct Outcome {
    /// Serialized with `--json`.
    pub json: serde_json::Value,
    /// Rendered without it.
    pub text: Box<dyn Human>,
    /// The exit code.
    pub exit: Exit,
}

impl Outcome {
    /// A report and the exit code it calls for.
    pub fn new<R: Serialize + Human + 'static>(report: R, exit: Exit) -> Self {
        Outcome {
            json: serde_json::to_value(&report).expect("reports serialize"),
            text: Box::new(report),
            exit,
        }
    }

    /// Prints it on stdout.
    ///
    /// # Errors
    /// Write errors of stdout.
    pub fn print(&self, json: bool) -> io::Result<()> {
        let stdout = io::stdout();
        let mut out = io::BufWriter::new(stdout.lock());
        if json {
            serde_json::to_writer_pretty(&mut out, &self.json)?;
            writeln!(out)?;
        } else {
            // Messages embed file names from disk: nothing in them may reach the
            // terminal as a control or format character.
            let mut text = Vec::new();
            self.text.human(&mut text)?;
            for line in String::from_utf8_lossy(&text).lines() {
                writeln!(out, "{}", sanitize(line))?;
            }
        }
        out.flush()
    }
}

/// A command that could not run: a message, and where, when known.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// What went wrong.
    pub error: String,
    /// The file it is about.
    pub file: Option<String>,
    /// The byte offset in that file.
    pub offset: Option<u64>,
    /// The exit code's meaning: "damage", "usage", "not_found" or "failed".
    pub kind: &'static str,
    #[serde(skip)]
    exit: Exit,
    #[serde(skip)]
    stderr_only: bool,
    #[serde(skip)]
    quiet: bool,
}

impl Failure {
    /// The failure for a library error.
    pub fn of(e: &highwater::Error) -> Self {
        let exit = match e {
            _ if e.is_corruption() => Exit::Damage,
            // What is on disk cannot be recovered as it is (docs/CLI.md: 1).
            highwater::Error::CheckpointNotCovered { .. }
            | highwater::Error::WalBehindCheckpoint { .. } => Exit::Damage,
            highwater::Error::CheckpointNotFound { .. } | highwater::Error::PartNotFound { .. } => {
                Exit::NotFound
            }
            _ => Exit::Failed,
        };
        Failure {
            error: e.to_string(),
            file: e.path().map(|p| p.display().to_string()),
            offset: e.offset(),
            kind: kind_name(exit),
            exit,
            stderr_only: false,
            quiet: false,
        }
    }

    /// A failure with only a message.
    pub fn message(error: String, exit: Exit) -> Self {
        Failure {
            error,
            file: None,
            offset: None,
            kind: kind_name(exit),
            exit,
            stderr_only: false,
            quiet: false,
        }
    }

    /// The exit code this failure calls for.
    pub fn exit_code(&self) -> Exit {
        self.exit
    }

    /// A failure writing the output itself: reported on stderr only (stdout
    /// may hold half a document already), and not at all for a closed pipe
    /// (`highwater ... | head`).
    pub fn output(e: &io::Error) -> Self {
        Failure {
            stderr_only: true,
            quiet: e.kind() == io::ErrorKind::BrokenPipe,
            ..Failure::message(format!("writing the output: {e}"), Exit::Failed)
        }
    }

    /// Prints it (JSON on stdout, or a line on stderr) and returns its exit code.
    pub fn report(&self, json: bool) -> Exit {
        if self.quiet {
            return self.exit;
        }
        if json && !self.stderr_only {
            let text = serde_json::to_string_pretty(self).expect("failures serialize");
            // Nothing more can be done if stdout is gone.
            let _ = writeln!(io::stdout(), "{text}");
        } else {
            let _ = writeln!(io::stderr(), "highwater: error: {}", sanitize(&self.error));
        }
        self.exit
    }
}

impl From<highwater::Error> for Failure {
    fn from(e: highwater::Error) -> Self {
        Failure::of(&e)
    }
}

fn kind_name(exit: Exit) -> &'static str {
    match exit {
        Exit::Ok => "ok",
        Exit::Damage => "damage",
        Exit::Usage => "usage",
        Exit::NotFound => "not_found",
        Exit::Failed => "failed",
    }
}

/// A problem found while verifying, with the file and offset it is about.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// The file (or directory) the problem is in.
    pub file: Option<String>,
    /// The byte offset in that file, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// The problem a library error describes.
    pub fn of(e: &highwater::Error) -> Self {
        Problem {
            file: e.path().map(|p| p.display().to_string()),
            offset: e.offset(),
            message: e.to_string(),
        }
    }
}

/// Columns of text, left-aligned, separated by two spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header row.
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the table.
    ///
    /// # Errors
    /// Write errors of `out`.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count();
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad + 2));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// An optional number as text ("-" for none).
pub fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}
