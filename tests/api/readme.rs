//! The README's first code block is examples/quickstart.rs's, word for word
//! (the example is compiled and run by the test suite; the README block is
//! not compiled itself, so that it shows no hidden lines).

#[test]
fn the_readme_shows_the_quickstart_example_as_it_is() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../../examples/quickstart.rs");
    let begin = example
        .find("    // README: begin\n")
        .expect("begin marker")
        + 21;
    let end = example.find("    // README: end\n").expect("end marker");
    let body: String = example[begin..end]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        readme.contains(body.trim_end()),
        "README.md's quickstart block differs from examples/quickstart.rs; copy it again"
    );
    assert!(
        !readme.contains("\n# "),
        "README code shows no rustdoc-hidden lines"
    );
}

#[test]
fn the_quickstart_runs_twice_and_goes_on_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        // cargo test builds the examples next to the test binaries.
        let exe = std::env::current_exe().unwrap();
        let example = exe.parent().unwrap().join("../examples/quickstart");
        let status = std::process::Command::new(example)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = std::fs::read_dir(dir.path().join("output"))
        .unwrap()
        .count();
    assert!(out >= 2, "two published epochs");
}
