//! Writes a small job's checkpoint directory and write-ahead log for trying the
//! `highwater` command-line tool (docs/CLI.md):
//!
//! ```text
//! cargo run --example cli_demo -- /tmp/hw-demo
//! cargo run -- checkpoints ls /tmp/hw-demo/checkpoints
//! ```

mod job;

fn main() -> std::process::ExitCode {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("usage: cli_demo DIR   (DIR must not exist yet)");
        return std::process::ExitCode::from(2);
    };
    let root = std::path::PathBuf::from(root);
    if root.exists() {
        eprintln!("{} exists already; give a new directory", root.display());
        return std::process::ExitCode::from(2);
    }
    match job::write_demo_job(&root) {
        Ok(job) => {
            println!("checkpoints: {}", job.ckpt.display());
            println!("wal:         {}", job.wal.display());
            println!(
                "the newest checkpoint covers the log up to position {}; commits reach {}, then one uncommitted entry",
                job.delta_position, job.committed_end
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cli_demo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
