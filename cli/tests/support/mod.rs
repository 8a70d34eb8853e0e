//! Running the `highwater` binary, shared by the CLI's test files.
#![allow(dead_code)]

use assert_cmd::Command;

/// The binary, ready for arguments.
pub fn highwater() -> Command {
    Command::cargo_bin("highwater").unwrap()
}

/// Runs the binary; returns stdout, stderr and the exit code.
pub fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (String, String, i32) {
    let out = highwater()
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().expect("exited"),
    )
}
