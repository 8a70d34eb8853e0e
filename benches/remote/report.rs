//! The bench's figures: one round's timings, the counts that stay the same
//! every round, and the table of medians (MB/s are of the part file's
//! bytes, which both sides move; ratios against the baseline measured next
//! to it in the same rounds).

use super::view::{median_p99, ViewRun};
use std::collections::BTreeMap;
use std::time::Duration;

/// The timings of one round.
#[derive(Default)]
pub struct Round {
    pub ours_upload: Duration,
    pub ours_local: Duration,
    pub ours_upload_parts: Duration,
    pub base_upload: Duration,
    pub view: ViewRun,
    pub view_off: ViewRun,
    pub base_view_get: Duration,
    /// The median of a few 64 KiB ranged gets of the baseline's object.
    pub base_small_get: Duration,
    pub ours_restore: Duration,
    pub ours_download_parts: Duration,
    pub base_get: Duration,
    pub cache_hit: Duration,
}

/// What stays the same in every round of one setting.
pub struct Counts {
    pub upload_requests: BTreeMap<String, u64>,
    pub restore_requests: BTreeMap<String, u64>,
    pub restore_reported: u64,
    pub hit_requests: BTreeMap<String, u64>,
    pub base_upload_requests: u64,
    pub base_get_requests: u64,
    pub part_bytes_written: u64,
    pub bytes_downloaded: u64,
}

fn total(by_op: &BTreeMap<String, u64>) -> u64 {
    by_op.values().sum()
}

fn show(by_op: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = by_op.iter().map(|(op, n)| format!("{op} {n}")).collect();
    format!("{} ({})", total(by_op), parts.join(", "))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One round's line (stderr), with the load average at its end.
pub fn round_line(r: usize, round: &Round) {
    let v = &round.view;
    let (med, p99) = median_p99(&v.remote_gets);
    eprintln!(
        "round {r}: upload {:.2}s (parts {:.2}s) vs {:.2}s; view first get {:.3}s \
         (open {:.3}s; no download {:.3}s, {} further remote gets median {:.1} ms), 64 KiB get {:.1} ms, further gets median {:.1} ms p99 {:.1} ms \
         ({} remote, {} local), local after {:.2}s vs get {:.2}s; restore {:.2}s \
         (parts {:.2}s) vs {:.2}s; hit {:.2}s; load {}",
        round.ours_upload.as_secs_f64(),
        round.ours_upload_parts.as_secs_f64(),
        round.base_upload.as_secs_f64(),
        v.first_get.as_secs_f64(),
        v.open.as_secs_f64(),
        round.view_off.first_get.as_secs_f64(),
        round.view_off.remote_gets.len(),
        ms(median_p99(&round.view_off.remote_gets).0),
        ms(round.base_small_get),
        ms(med),
        ms(p99),
        v.remote_gets.len(),
        v.local_gets,
        v.local_after.as_secs_f64(),
        round.base_view_get.as_secs_f64(),
        round.ours_restore.as_secs_f64(),
        round.ours_download_parts.as_secs_f64(),
        round.base_get.as_secs_f64(),
        round.cache_hit.as_secs_f64(),
        load(),
    );
}

/// The table of medians of one setting (stdout, markdown).
pub fn table(file: usize, concurrency: usize, part: usize, rounds: &[Round], counts: &Counts) {
    let med = |f: &dyn Fn(&Round) -> Duration| median(rounds.iter().map(f).collect());
    let mbs = |d: Duration| file as f64 / 1e6 / d.as_secs_f64();
    let row = |name: &str, d: Duration, base: Option<Duration>| {
        let ratio = base.map_or(String::new(), |b| format!("{:.2}", mbs(d) / mbs(b)));
        println!(
            "| {name} | {:.3} | {:.0} | {ratio} |",
            d.as_secs_f64(),
            mbs(d)
        );
    };
    let share = |name: &str, d: Duration, of: Duration| {
        println!(
            "| {name} | {:.3} | | {:.2}% of the full get |",
            d.as_secs_f64(),
            100.0 * d.as_secs_f64() / of.as_secs_f64()
        );
    };
    let (bu, bg, bv) = (
        med(&|r| r.base_upload),
        med(&|r| r.base_get),
        med(&|r| r.base_view_get),
    );
    println!(
        "\n### part file {} MiB, concurrency {concurrency}, part {} MiB, {} round(s), load {}\n",
        file >> 20,
        part >> 20,
        rounds.len(),
        load()
    );
    println!("| phase | median s | MB/s | ours / baseline |");
    println!("|---|---|---|---|");
    row(
        "ours: create_checkpoint (total)",
        med(&|r| r.ours_upload),
        Some(bu),
    );
    row(
        "— of which encode + local publish",
        med(&|r| r.ours_local),
        None,
    );
    row(
        "— of which part upload",
        med(&|r| r.ours_upload_parts),
        Some(bu),
    );
    row("baseline: WriteMultipart", bu, None);
    share(
        "ours: view open → first get (download on)",
        med(&|r| r.view.first_get),
        bv,
    );
    share("— of which open", med(&|r| r.view.open), bv);
    share(
        "ours: view open → first get (download off)",
        med(&|r| r.view_off.first_get),
        bv,
    );
    row(
        "ours: view open → local (wait)",
        med(&|r| r.view.local_after),
        Some(bv),
    );
    row("baseline: ranged gets (paired with the view)", bv, None);
    share(
        "baseline: one 64 KiB ranged get",
        med(&|r| r.base_small_get),
        bv,
    );
    row(
        "ours: restore (new manager, empty cache)",
        med(&|r| r.ours_restore),
        Some(bg),
    );
    row(
        "— of which part download",
        med(&|r| r.ours_download_parts),
        Some(bg),
    );
    row("baseline: ranged gets (paired with the restore)", bg, None);
    row("ours: cache-hit restore", med(&|r| r.cache_hit), None);

    let all: Vec<Duration> = rounds
        .iter()
        .flat_map(|r| r.view.remote_gets.clone())
        .collect();
    let (gm, gp) = median_p99(&all);
    let local: usize = rounds.iter().map(|r| r.view.local_gets).sum();
    let off: Vec<Duration> = rounds
        .iter()
        .flat_map(|r| r.view_off.remote_gets.clone())
        .collect();
    let (om, op) = median_p99(&off);
    let o = &rounds[0].view_off;
    let per_off = |n: u64| n as f64 / o.remote_gets.len().max(1) as f64;
    println!(
        "\nview without the download, further random gets: {} (all rounds), median {:.1} ms, \
         p99 {:.1} ms; round 0: first get {} ranged gets / {} bytes, further {:.1} / {:.0} \
         bytes each",
        off.len(),
        ms(om),
        ms(op),
        o.first_requests,
        o.first_bytes,
        per_off(o.remote_requests),
        per_off(o.remote_bytes),
    );
    let v = &rounds[0].view;
    let per = |n: u64| n as f64 / v.remote_gets.len().max(1) as f64;
    println!(
        "view, further random gets while the download runs: {} remote (all rounds), \
         median {:.1} ms, p99 {:.1} ms; {local} answered after the switch.\n\
         view requests (round 0, report()): open {} ranged gets / {} bytes; first get {} / {} \
         bytes; further remote gets {:.1} / {:.0} bytes each; download published {} bytes",
        all.len(),
        ms(gm),
        ms(gp),
        v.open_requests,
        v.open_bytes,
        v.first_requests,
        v.first_bytes,
        per(v.remote_requests),
        per(v.remote_bytes),
        v.downloaded,
    );
    println!(
        "per checkpoint: part bytes {} uploaded; HTTP requests: checkpoint {}, \
         restore {} (RemoteRestore.requests {}, {} bytes downloaded), cache hit {}; \
         baseline upload {} (create + parts + complete), baseline get {}",
        counts.part_bytes_written,
        show(&counts.upload_requests),
        show(&counts.restore_requests),
        counts.restore_reported,
        counts.bytes_downloaded,
        show(&counts.hit_requests),
        counts.base_upload_requests,
        counts.base_get_requests,
    );
}
