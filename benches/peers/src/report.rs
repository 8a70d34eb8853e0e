//! Medians, process counters and the final table.

use std::fs;
use std::time::Duration;

/// The median of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A field (in kB or bytes, as the kernel prints it) of a /proc/self file.
fn proc_field(file: &str, field: &str) -> u64 {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Bytes this process passed to write(2)-like calls so far (all threads,
/// RocksDB's background flushes and compactions included).
pub fn wchar() -> u64 {
    proc_field("/proc/self/io", "wchar")
}

/// Peak resident set (VmHWM), kB.
pub fn vm_hwm_kb() -> u64 {
    proc_field("/proc/self/status", "VmHWM")
}

/// Current resident set (VmRSS), kB.
pub fn vm_rss_kb() -> u64 {
    proc_field("/proc/self/status", "VmRSS")
}

/// One row of the final table.
pub struct Row {
    pub figure: &'static str,
    pub ours: String,
    pub peer: String,
    pub ratio: f64,
    pub ratio_text: &'static str,
    pub target: &'static str,
    pub met: bool,
}

/// Prints the rows as a Markdown table.
pub fn table(rows: &[Row]) {
    println!();
    println!("| figure | highwater | peer | ratio | target | |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | **{:.2}×** {} | {} | {} |",
            r.figure,
            r.ours,
            r.peer,
            r.ratio,
            r.ratio_text,
            r.target,
            if r.met { "✔" } else { "✘" }
        );
    }
}
