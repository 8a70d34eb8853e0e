//! The supervisor: runs the job as a series of runs, each one coordinator
//! process and `workers` worker processes, and breaks them on purpose.
//!
//! The chaos plan ([`plan`], drawn from the seed) for `--workers n`:
//! 1. `n` workers: SIGKILL one worker at a random point;
//! 2. `n` workers: SIGKILL the coordinator at a random point;
//! 3. `n` workers: freeze the coordinator (SIGSTOP) while it holds every
//!    report of an epoch, and start the next run without it; its workers
//!    are left running and find themselves fenced;
//! 4. `n - 1` workers (a rescale): once this run committed an epoch, SIGCONT
//!    the frozen coordinator, whose commit must be refused (`fenced: ...`,
//!    exit code [`FENCED_EXIT`]); then SIGKILL a worker;
//! 5. `n + 1` workers (a rescale): SIGKILL the coordinator;
//! 6. `n + 1` workers: run to the end.
//!
//! A kill stops the whole run (SIGKILL to all of its processes) and the next
//! run starts a new coordinator, which claims a new generation and restores
//! the newest committed epoch. A random point is a random number of the
//! run's commits (0 to 2) plus a random delay.

use crate::procs::{Msg, Proc, Procs};
use crate::FENCED_EXIT;
use std::process::Command;
use std::time::{Duration, Instant};

/// What the supervisor does to one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chaos {
    KillWorker,
    KillCoordinator,
    Freeze,
    ResumeFrozenThenKillWorker,
    Finish,
}

/// One run of the plan.
#[derive(Debug, Clone, Copy)]
struct Step {
    workers: u32,
    chaos: Chaos,
    /// Commits of this run before the chaos (for a resume: after it).
    after: u64,
    delay: Duration,
    /// Which worker a worker kill hits.
    victim: u32,
}

/// A xorshift generator: the same seed, the same plan.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn plan(workers: u32, rng: &mut Rng) -> Vec<Step> {
    let steps = [
        (workers, Chaos::KillWorker),
        (workers, Chaos::KillCoordinator),
        (workers, Chaos::Freeze),
        (workers - 1, Chaos::ResumeFrozenThenKillWorker),
        (workers + 1, Chaos::KillCoordinator),
        (workers + 1, Chaos::Finish),
    ];
    steps
        .into_iter()
        .map(|(workers, chaos)| Step {
            workers,
            chaos,
            after: rng.next() % 3 + u64::from(chaos == Chaos::Freeze),
            delay: Duration::from_micros(rng.next() % 8_000),
            victim: (rng.next() % u64::from(workers)) as u32,
        })
        .collect()
}

/// Starts the processes: `command(args)` runs this binary with `args`.
pub struct Launcher<'a> {
    pub command: &'a dyn Fn(&[String]) -> Command,
    pub store: String,
    pub seed: u64,
}

/// What the whole supervision saw.
#[derive(Debug, Default)]
pub struct Summary {
    pub runs: usize,
    pub kills: usize,
    pub refused: Option<String>,
    pub zombies_fenced: usize,
    pub rescales: Vec<(u32, u32)>,
}

/// A coordinator frozen in an earlier run.
struct Frozen {
    proc: Proc,
    run: usize,
    generation: u64,
    epoch: u64,
    refusal: Option<String>,
    resumed: bool,
}

/// The processes of the current run and what they said.
struct Run {
    number: usize,
    step: Step,
    /// `None` once frozen (then it is the [`Frozen`]).
    coordinator: Option<Proc>,
    workers: Vec<Proc>,
    generation: Option<u64>,
    commits: Vec<u64>,
    joined: u32,
    restored_keys: u64,
    restored_bytes: u64,
    /// Commits of this run when the frozen coordinator was seen fenced.
    fenced_at: Option<u64>,
    trigger: Option<Instant>,
    started: Instant,
}

impl Run {
    fn stop(&mut self) {
        if let Some(c) = &mut self.coordinator {
            c.kill();
        }
        for w in &mut self.workers {
            w.kill();
        }
    }

    fn is_coordinator(&self, id: usize) -> bool {
        self.coordinator.as_ref().is_some_and(|c| c.id == id)
    }

    fn worker(&mut self, id: usize) -> Option<&mut Proc> {
        self.workers.iter_mut().find(|w| w.id == id)
    }
}

/// Everything the supervisor keeps across runs.
struct State {
    procs: Procs,
    frozen: Option<Frozen>,
    /// The workers of a frozen run, left to find out they are fenced.
    zombies: Vec<Proc>,
    summary: Summary,
}

/// Runs the plan to its end, printing progress.
///
/// # Errors
/// A process that fails on its own, a plan step that could not be carried
/// out, a frozen coordinator that was not fenced.
pub fn supervise(launch: &Launcher, workers: u32, rng: &mut Rng) -> Result<Summary, String> {
    let mut st = State {
        procs: Procs::new(),
        frozen: None,
        zombies: Vec::new(),
        summary: Summary::default(),
    };
    let mut last_workers = None;
    for (i, step) in plan(workers, rng).into_iter().enumerate() {
        let number = i + 1;
        if let Some(before) = last_workers.filter(|w| *w != step.workers) {
            println!("rescale: {before} -> {} workers", step.workers);
            st.summary.rescales.push((before, step.workers));
        }
        last_workers = Some(step.workers);
        let mut args = vec![
            "coordinator".to_string(),
            "--store".to_string(),
            launch.store.clone(),
            "--workers".to_string(),
            step.workers.to_string(),
        ];
        if step.chaos == Chaos::Freeze {
            args.extend(["--stall-after".to_string(), step.after.to_string()]);
        }
        let name = format!("run {number}'s coordinator");
        let coordinator = st.procs.spawn(name, (launch.command)(&args))?;
        let mut run = Run {
            number,
            step,
            coordinator: Some(coordinator),
            workers: Vec::new(),
            generation: None,
            commits: Vec::new(),
            joined: 0,
            restored_keys: 0,
            restored_bytes: 0,
            fenced_at: None,
            trigger: None,
            started: Instant::now(),
        };
        let ended = drive(launch, &mut st, &mut run);
        run.stop();
        st.summary.runs += 1;
        let ended = ended?;
        let committed = match (run.commits.first(), run.commits.last()) {
            (Some(a), Some(b)) => format!("committed epochs {a}..={b}"),
            _ => "committed nothing".to_string(),
        };
        println!(
            "run {number}: {committed}; {ended} ({:.2} s)",
            run.started.elapsed().as_secs_f64()
        );
    }
    if let Some(f) = &st.frozen {
        return Err(format!(
            "the frozen coordinator of run {} was never resumed",
            f.run
        ));
    }
    Ok(st.summary)
}

fn field<T: std::str::FromStr>(value: Option<&str>, line: &str) -> Result<T, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("unexpected line {line:?}"))
}

/// Reads the run's messages and carries out its step; returns how the run
/// ended.
fn drive(launch: &Launcher, st: &mut State, run: &mut Run) -> Result<String, String> {
    let number = run.number;
    let mut idle = Instant::now();
    loop {
        let msg = st.procs.recv(Duration::from_millis(1));
        if msg.is_some() {
            idle = Instant::now();
        } else if idle.elapsed() > Duration::from_secs(60) {
            return Err(format!("run {number}: no progress for 60 s"));
        }
        match msg {
            Some(Msg::Line(id, line)) if run.is_coordinator(id) => {
                if let Some(ended) = coordinator_line(launch, st, run, &line)? {
                    return Ok(ended);
                }
            }
            Some(Msg::Line(id, line)) if run.worker(id).is_some() => {
                let mut f = line.split(' ');
                if f.next() == Some("joined") {
                    let nums: Vec<u64> = f.skip(4).filter_map(|n| n.parse().ok()).collect();
                    run.restored_keys += nums.first().copied().unwrap_or(0);
                    run.restored_bytes += nums.get(1).copied().unwrap_or(0);
                    run.joined += 1;
                    if run.joined == run.step.workers {
                        println!(
                            "run {number}: {} workers joined; restored {} keys, {} bytes read from the base's parts",
                            run.joined, run.restored_keys, run.restored_bytes
                        );
                    }
                }
            }
            Some(Msg::Line(id, line))
                if line.starts_with("fenced:")
                    && st.frozen.as_ref().is_some_and(|f| f.proc.id == id) =>
            {
                st.frozen.as_mut().expect("checked").refusal = Some(line);
            }
            Some(Msg::Line(id, line))
                if line.starts_with("fenced:") && st.zombies.iter().any(|z| z.id == id) =>
            {
                st.summary.zombies_fenced += 1;
            }
            Some(Msg::Eof(id)) if run.is_coordinator(id) => {
                let c = run.coordinator.as_mut().expect("checked");
                let status = c.wait()?;
                if !status.success() {
                    return Err(format!(
                        "run {number}: the coordinator failed on its own ({status})"
                    ));
                }
                if run.step.chaos != Chaos::Finish {
                    return Err(format!(
                        "run {number}: the job ended before the plan's {:?}: more epochs needed",
                        run.step.chaos
                    ));
                }
                for w in &mut run.workers {
                    let status = w.wait()?;
                    if !status.success() {
                        return Err(format!("{}: failed ({status})", w.name));
                    }
                }
                return Ok("finished: every epoch committed".to_string());
            }
            Some(Msg::Eof(id)) if run.worker(id).is_some() => {
                let w = run.worker(id).expect("checked");
                let status = w.wait()?;
                if !status.success() {
                    return Err(format!("{}: failed on its own ({status})", w.name));
                }
            }
            Some(Msg::Eof(id)) if st.frozen.as_ref().is_some_and(|f| f.proc.id == id) => {
                let mut f = st.frozen.take().expect("checked");
                let status = f.proc.wait()?;
                let refusal = f.refusal.take().unwrap_or_default();
                let want = format!("fenced: commit of epoch {} refused", f.epoch);
                if status.code() != Some(i32::from(FENCED_EXIT)) || !refusal.starts_with(&want) {
                    return Err(format!(
                        "the frozen coordinator of run {} (generation {}) was not fenced: {status}, said {refusal:?}",
                        f.run, f.generation
                    ));
                }
                println!(
                    "run {} (frozen coordinator, generation {}): {refusal}",
                    f.run, f.generation
                );
                println!(
                    "run {number}: the frozen coordinator exited with code {FENCED_EXIT}, publishing nothing"
                );
                st.summary.refused = Some(refusal);
                run.fenced_at = Some(run.commits.len() as u64);
            }
            Some(Msg::Eof(id)) if st.zombies.iter().any(|z| z.id == id) => {
                let z = st.zombies.iter_mut().find(|z| z.id == id).expect("checked");
                let status = z.wait()?;
                if !(status.success() || status.code() == Some(i32::from(FENCED_EXIT))) {
                    return Err(format!("{} (superseded): failed ({status})", z.name));
                }
            }
            _ => {}
        }
        st.zombies.retain(|z| !z.exited());
        if let Some(ended) = chaos(st, run)? {
            return Ok(ended);
        }
    }
}

/// Handles a line of the run's coordinator; `Some` when the run ends.
fn coordinator_line(
    launch: &Launcher,
    st: &mut State,
    run: &mut Run,
    line: &str,
) -> Result<Option<String>, String> {
    let number = run.number;
    let mut f = line.split(' ');
    match f.next() {
        Some("generation") => {
            let g: u64 = field(f.next(), line)?;
            let restored = f.nth(1).unwrap_or("-");
            run.generation = Some(g);
            println!(
                "run {number}: generation {g}, {} workers, restored {}",
                run.step.workers,
                if restored == "-" {
                    "nothing (a new job)".to_string()
                } else {
                    format!("epoch {restored}")
                }
            );
            for w in 0..run.step.workers {
                let args: Vec<String> = [
                    "worker",
                    "--store",
                    &launch.store,
                    "--generation",
                    &g.to_string(),
                    "--index",
                    &w.to_string(),
                    "--seed",
                    &launch.seed.to_string(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let name = format!("run {number}'s worker {w}");
                run.workers
                    .push(st.procs.spawn(name, (launch.command)(&args))?);
            }
        }
        Some("republished") => println!(
            "run {number}: republished epoch {}'s {} output objects ({} not yet published)",
            field::<u64>(f.next(), line)?,
            field::<u64>(f.next(), line)?,
            field::<u64>(f.next(), line)?
        ),
        Some("committed") => run.commits.push(field(f.next(), line)?),
        Some("stalling") if run.step.chaos == Chaos::Freeze => {
            let epoch = field(f.next(), line)?;
            let generation = run.generation.ok_or("stalled before its generation")?;
            let proc = run.coordinator.take().expect("the line came from it");
            proc.freeze()?;
            println!(
                "run {number}: SIGSTOP the coordinator (generation {generation}) holding every report of epoch {epoch}, before its commit"
            );
            st.frozen = Some(Frozen {
                proc,
                run: number,
                generation,
                epoch,
                refusal: None,
                resumed: false,
            });
            st.zombies.append(&mut run.workers);
            return Ok(Some(format!(
                "coordinator frozen, its {} workers left to be fenced",
                run.step.workers
            )));
        }
        _ => {}
    }
    Ok(None)
}

/// Carries out the run's step when its point has come; `Some` when the
/// run ends.
fn chaos(st: &mut State, run: &mut Run) -> Result<Option<String>, String> {
    let number = run.number;
    let commits = run.commits.len() as u64;
    let ready = match run.step.chaos {
        Chaos::KillWorker | Chaos::KillCoordinator => commits >= run.step.after,
        Chaos::ResumeFrozenThenKillWorker => {
            if let Some(f) = st.frozen.as_mut().filter(|f| !f.resumed && commits >= 1) {
                println!(
                    "run {number}: committed epoch {} as generation {}; SIGCONT the frozen coordinator (generation {})",
                    run.commits[0],
                    run.generation.unwrap_or_default(),
                    f.generation
                );
                f.proc.resume()?;
                f.resumed = true;
            }
            run.fenced_at
                .is_some_and(|at| commits >= at + run.step.after)
        }
        Chaos::Freeze | Chaos::Finish => false,
    };
    if !ready || run.workers.len() < run.step.workers as usize {
        return Ok(None);
    }
    let at = *run
        .trigger
        .get_or_insert_with(|| Instant::now() + run.step.delay);
    if Instant::now() < at {
        return Ok(None);
    }
    st.summary.kills += 1;
    let point = format!(
        "after {commits} commits + {} us",
        run.step.delay.as_micros()
    );
    let restored = format!(
        "restored {} keys ({} bytes read)",
        run.restored_keys, run.restored_bytes
    );
    if run.step.chaos == Chaos::KillCoordinator {
        if let Some(c) = &mut run.coordinator {
            c.kill();
        }
        println!("run {number}: SIGKILL the coordinator {point}; stopping the run");
        return Ok(Some(format!("coordinator killed; {restored}")));
    }
    run.workers[run.step.victim as usize].kill();
    println!(
        "run {number}: SIGKILL worker {} {point}; stopping the run",
        run.step.victim
    );
    Ok(Some(format!(
        "worker {} killed; {restored}",
        run.step.victim
    )))
}
