//! The supervisor's child processes: each one's stdout lines arrive on one
//! channel for all of them (a reader thread per child), and each can be
//! sent SIGKILL, SIGSTOP and SIGCONT by its process id. A [`Proc`] that is
//! dropped before it exited is killed and reaped, so no error path leaves a
//! process behind (a stopped one included: SIGKILL ends it too).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

/// What a child said: a line, or the end of its output (it exited).
#[derive(Debug)]
pub enum Msg {
    Line(usize, String),
    Eof(usize),
}

/// The channel every child's lines arrive on.
pub struct Procs {
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    next: usize,
}

impl Procs {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Procs { tx, rx, next: 0 }
    }

    /// Starts `command` with its stdout read into the channel (stderr is
    /// the supervisor's).
    pub fn spawn(&mut self, name: String, mut command: Command) -> Result<Proc, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let stdin = child.stdin.take();
        let id = self.next;
        self.next += 1;
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(Msg::Line(id, line));
            }
            let _ = tx.send(Msg::Eof(id));
        });
        Ok(Proc {
            id,
            name,
            child,
            stdin,
            status: None,
        })
    }

    /// The next message, if one comes within `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Msg> {
        self.rx.recv_timeout(timeout).ok()
    }
}

/// One child process.
pub struct Proc {
    pub id: usize,
    pub name: String,
    child: Child,
    /// The child's stdin: a line on it releases a stalled coordinator.
    stdin: Option<ChildStdin>,
    status: Option<ExitStatus>,
}

impl Proc {
    fn signal(&self, signal: libc::c_int) -> Result<(), String> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with the pid of a child this process has not
        // reaped yet (so the pid cannot have been reused) and a valid signal.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(format!(
                "signal {signal} to {}: {}",
                self.name,
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.signal(libc::SIGKILL);
            self.status = self.child.wait().ok();
        }
    }

    /// SIGSTOP, then waits (up to 5 s) until the kernel shows it stopped.
    pub fn freeze(&self) -> Result<(), String> {
        self.signal(libc::SIGSTOP)?;
        let stat = format!("/proc/{}/stat", self.child.id());
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            // The state is the field after the parenthesised command name.
            let text = std::fs::read_to_string(&stat).unwrap_or_default();
            if let Some((_, rest)) = text.rsplit_once(')') {
                if rest.trim_start().starts_with('T') {
                    return Ok(());
                }
            } else if !std::path::Path::new("/proc/self/stat").exists() {
                return Ok(()); // no procfs: trust the signal
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(format!("{} did not stop after SIGSTOP", self.name))
    }

    /// SIGCONT.
    pub fn resume(&mut self) -> Result<(), String> {
        self.signal(libc::SIGCONT)?;
        // Release a coordinator stalled before its commit.
        if let Some(stdin) = self.stdin.as_mut() {
            writeln!(stdin, "go")
                .and_then(|()| stdin.flush())
                .map_err(|e| format!("release {}: {e}", self.name))?;
        }
        Ok(())
    }

    /// Waits for the process to exit (its output has ended) and returns how.
    pub fn wait(&mut self) -> Result<ExitStatus, String> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| format!("{}: {e}", self.name))?;
        self.status = Some(status);
        Ok(status)
    }

    /// Whether it exited (and was reaped).
    pub fn exited(&self) -> bool {
        self.status.is_some()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
