//! Real processes killed with SIGKILL: the crash-consistency job
//! (`crash_process_kill`), the `exactly_once_pipeline` example's job, and a
//! job checkpointing asynchronously (`async_checkpoint_kill`). No
//! test harness: the binary is its own child, told apart by an environment
//! variable each test sets for its children.
//!
//! Arguments follow the test harness where they matter: a name filter (a
//! substring, or the whole name with `--exact`) picks the tests to run,
//! `--skip NAME` leaves one out, `--list` lists them; other options are
//! accepted and ignored. `cargo test --test process_kill crash_process_kill`
//! runs the kill test alone.

#[path = "../common/mod.rs"]
mod common;

mod async_checkpoint_kill;
mod crash_process_kill;
mod exactly_once_pipeline;

/// The tests of this binary, by name.
const TESTS: [(&str, fn()); 3] = [
    ("async_checkpoint_kill", async_checkpoint_kill::main),
    ("crash_process_kill", crash_process_kill::main),
    ("exactly_once_pipeline", exactly_once_pipeline::main),
];

/// Options of the test harness that take a value (`--skip` is read).
const WITH_VALUE: [&str; 6] = [
    "--test-threads",
    "--format",
    "--color",
    "--logfile",
    "--shuffle-seed",
    "-Z",
];

fn main() {
    // A child runs its test's body, whatever the arguments.
    if std::env::var_os(async_checkpoint_kill::CHILD_ENV).is_some() {
        return async_checkpoint_kill::main();
    }
    if std::env::var_os(crash_process_kill::CHILD_ENV).is_some() {
        return crash_process_kill::main();
    }
    if std::env::var_os(exactly_once_pipeline::CHILD_ENV).is_some() {
        return exactly_once_pipeline::main();
    }
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let (mut exact, mut list) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            "--skip" => skips.extend(args.next()),
            a if WITH_VALUE.contains(&a) => {
                args.next();
            }
            a if a.starts_with('-') => {}
            _ => filters.push(arg),
        }
    }
    let matches = |name: &str, pattern: &String| {
        if exact {
            name == pattern
        } else {
            name.contains(pattern.as_str())
        }
    };
    let mut passed = 0;
    for (name, test) in TESTS {
        let chosen = (filters.is_empty() || filters.iter().any(|f| matches(name, f)))
            && !skips.iter().any(|s| matches(name, s));
        if !chosen {
            continue;
        }
        if list {
            println!("{name}: test");
        } else {
            println!("running {name}");
            // A failing test panics, which fails the binary before this count.
            test();
            passed += 1;
        }
    }
    if !list {
        println!("process_kill: {passed} passed, 0 failed");
    }
}
