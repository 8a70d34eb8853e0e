//! Side by side (issue 20): highwater's seed-compatible API against LaminarDB
//! 0.19.11 (`laminar-storage`, the seed's own crate) and RocksDB, in one
//! process run, each figure measured alternately ours/peer, median of the runs.
//!
//! Usage: `highwater-peers [--dir DIR] [--runs N] [--keys N] [--only FIG]
//! [--side ours|seed|both]`. DIR (or `PEERS_DIR`) must be on a real file system
//! (not tmpfs); the default is `/var/tmp/highwater-peers`. FIG is one of
//! `append replay durable checkpoint restore mapped bytes round` (repeatable),
//! for profiling one path; `--side` runs only one side of it; `--keep` leaves
//! the run's directory (with the full checkpoints) in place, so that
//! `highwater-peers --child-restore ours|seed CPDIR WAL` can be profiled alone.

mod ours;
mod report;
mod rocks;
mod seed;
mod workload;

use report::{median, ms, table, vm_hwm_kb, vm_rss_kb, wchar, Row};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Args {
    dir: PathBuf,
    runs: usize,
    keys: usize,
    only: Vec<String>,
    ours: bool,
    seed: bool,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        dir: std::env::var_os("PEERS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/highwater-peers")),
        runs: 5,
        keys: 1_000_000,
        only: Vec::new(),
        ours: true,
        seed: true,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(val()),
            "--runs" => a.runs = val().parse().expect("--runs N"),
            "--keys" => a.keys = val().parse().expect("--keys N"),
            "--only" => a.only.push(val()),
            "--keep" => a.keep = true,
            "--side" => match val().as_str() {
                "ours" => a.seed = false,
                "seed" | "peer" => a.ours = false,
                _ => {}
            },
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn wants(a: &Args, fig: &str) -> bool {
    a.only.is_empty() || a.only.iter().any(|f| f == fig)
}

/// A fresh empty directory `name` under the scratch directory.
fn fresh(base: &Path, name: &str) -> PathBuf {
    let p = base.join(name);
    let _ = fs::remove_dir_all(&p);
    let _ = fs::remove_file(&p);
    fs::create_dir_all(p.parent().unwrap()).expect("mkdir");
    p
}

fn fs_type(dir: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Child mode: `--child-restore ours|seed CPDIR WAL`: one restore, then
/// `time_ns len hwm_kb rss_before_kb` on stdout.
fn child_restore(side: &str, cp: &Path, wal: &Path) {
    let before = vm_rss_kb();
    let (t, len) = match side {
        "ours" => ours::restore(cp, wal),
        _ => seed::restore(cp, wal),
    };
    println!("{} {} {} {}", t.as_nanos(), len, vm_hwm_kb(), before);
}

struct Restore {
    time: Duration,
    len: usize,
    hwm_kb: u64,
    before_kb: u64,
}

fn spawn_restore(side: &str, cp: &Path, wal: &Path) -> Restore {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .arg("--child-restore")
        .arg(side)
        .arg(cp)
        .arg(wal)
        .output()
        .expect("spawn child");
    assert!(
        out.status.success(),
        "{side} restore child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    let f: Vec<u64> = s
        .split_whitespace()
        .map(|x| x.parse().expect("child output"))
        .collect();
    Restore {
        time: Duration::from_nanos(f[0]),
        len: f[1] as usize,
        hwm_kb: f[2],
        before_kb: f[3],
    }
}

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("--child-restore") {
        child_restore(&raw[2], Path::new(&raw[3]), Path::new(&raw[4]));
        return;
    }
    let a = args();
    fs::create_dir_all(&a.dir).expect("scratch dir");
    let base = a.dir.join(format!("run-{}", std::process::id()));
    fs::create_dir_all(&base).expect("run dir");
    let fst = fs_type(&base);
    println!("scratch: {} (file system: {fst})", base.display());
    assert!(
        fst != "tmpfs" && fst != "ramfs",
        "the scratch directory is on {fst}: give --dir on a disk"
    );
    let n = a.keys;
    let runs = a.runs;
    println!("workload: {n} Puts (16 B keys, 100 B values), a Commit every 100; {runs} runs per figure, alternating highwater / seed");

    let mut rows = Vec::new();
    let ops = workload::log_ops(n);
    let n_entries = ops.len();
    let our_entries = ours::entries(&ops);
    let seed_entries = seed::entries(&ops);
    drop(ops);

    // ---------------------------------------------------------------- append
    let our_wal = base.join("ours-wal");
    let seed_wal = base.join("seed.wal");
    if wants(&a, "append") || wants(&a, "replay") {
        let (mut to, mut ts) = (Vec::new(), Vec::new());
        let append_runs = if wants(&a, "append") { runs } else { 1 };
        for r in 0..append_runs {
            if a.ours {
                let p = fresh(&base, "ours-wal");
                let t = ours::append(&p, &our_entries);
                println!("  append run {r}: highwater {:8.1} ms", ms(t));
                to.push(t);
            }
            if a.seed {
                let p = fresh(&base, "seed.wal");
                let t = seed::append(&p, &seed_entries);
                println!("  append run {r}: seed      {:8.1} ms", ms(t));
                ts.push(t);
            }
        }
        if a.ours && a.seed && wants(&a, "append") {
            let (o, s) = (median(to), median(ts));
            let (po, ps) = (n as f64 / o.as_secs_f64(), n as f64 / s.as_secs_f64());
            rows.push(Row {
                figure: "buffered append, puts/s",
                ours: format!("{:.2} M/s", po / 1e6),
                peer: format!("seed {:.2} M/s", ps / 1e6),
                ratio: po / ps,
                ratio_text: "ours/seed",
                target: "≥ 2.0×",
                met: po / ps >= 2.0,
            });
        }
    }

    // ---------------------------------------------------------------- replay
    if wants(&a, "replay") {
        let (mut to, mut ts) = (Vec::new(), Vec::new());
        for r in 0..runs {
            if a.ours {
                let cp = fresh(&base, "ours-replay-cp");
                let (t, read, changes) = ours::replay(&cp, &our_wal);
                assert_eq!(changes, n, "highwater returned every committed Put");
                assert_eq!(read as usize, n_entries);
                println!("  replay run {r}: highwater {:8.1} ms", ms(t));
                to.push(t);
            }
            if a.seed {
                let cp = fresh(&base, "seed-replay-cp");
                let (t, read, changes) = seed::replay(&cp, &seed_wal);
                assert_eq!(changes, n, "seed returned every Put");
                assert_eq!(read as usize, n_entries);
                println!("  replay run {r}: seed      {:8.1} ms", ms(t));
                ts.push(t);
            }
        }
        if a.ours && a.seed {
            let (o, s) = (median(to), median(ts));
            let (eo, es) = (
                n_entries as f64 / o.as_secs_f64(),
                n_entries as f64 / s.as_secs_f64(),
            );
            rows.push(Row {
                figure: "replay collecting changes (`recover_with_changes`), entries/s",
                ours: format!("{:.2} M/s ({:.0} ms)", eo / 1e6, ms(o)),
                peer: format!("seed {:.2} M/s ({:.0} ms)", es / 1e6, ms(s)),
                ratio: eo / es,
                ratio_text: "ours/seed",
                target: "≥ 3.0×",
                met: eo / es >= 3.0,
            });
        }
    }
    let _ = fs::remove_dir_all(&our_wal);
    let _ = fs::remove_file(&seed_wal);

    // ---------------------------------------------------------------- durable
    if wants(&a, "durable") {
        let k = 1000.min(n_entries);
        let (mut to, mut ts) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            if a.ours {
                to.push(ours::durable(&fresh(&base, "ours-dwal"), &our_entries[..k]));
            }
            if a.seed {
                ts.push(seed::durable(
                    &fresh(&base, "seed-d.wal"),
                    &seed_entries[..k],
                ));
            }
        }
        if a.ours && a.seed {
            let (o, s) = (median(to), median(ts));
            let (ao, as_) = (k as f64 / o.as_secs_f64(), k as f64 / s.as_secs_f64());
            rows.push(Row {
                figure: "durable appends (`set_sync_on_write(true)`), appends/s",
                ours: format!("{:.0}/s ({:.1} µs each)", ao, 1e6 / ao),
                peer: format!("seed {:.0}/s ({:.1} µs)", as_, 1e6 / as_),
                ratio: ao / as_,
                ratio_text: "ours/seed",
                target: "≥ 1.4×",
                met: ao / as_ >= 1.4,
            });
        }
    }
    drop(our_entries);
    drop(seed_entries);

    // ---------------------------------------------------------------- full checkpoint
    let pairs = workload::pairs(n);
    let our_cp = base.join("ours-cp");
    let seed_cp = base.join("seed-cp");
    let need_cp = wants(&a, "checkpoint") || wants(&a, "restore");
    if need_cp {
        let cp_runs = if wants(&a, "checkpoint") { runs } else { 1 };
        let (mut to, mut ts) = (Vec::new(), Vec::new());
        let mut size = (0, 0);
        for r in 0..cp_runs {
            if a.ours {
                let p = fresh(&base, "ours-cp");
                let input = pairs.clone();
                let (st, len) = ours::full_checkpoint(&p, input);
                size.0 = len;
                println!(
                    "  full checkpoint run {r}: highwater {:7.1} ms = new {:6.1} + to_bytes {:6.1} + create_checkpoint_with_state {:6.1}",
                    ms(st.total()), ms(st.new), ms(st.to_bytes), ms(st.write)
                );
                to.push(st);
            }
            if a.seed {
                let p = fresh(&base, "seed-cp");
                let input = pairs.clone();
                let (st, len) = seed::full_checkpoint(&p, input);
                size.1 = len;
                println!(
                    "  full checkpoint run {r}: seed      {:7.1} ms = new {:6.1} + to_bytes {:6.1} + create_checkpoint_with_state {:6.1}",
                    ms(st.total()), ms(st.new), ms(st.to_bytes), ms(st.write)
                );
                ts.push(st);
            }
        }
        if a.ours && a.seed && wants(&a, "checkpoint") {
            let o = median(to.iter().map(|s| s.total()).collect());
            let s = median(ts.iter().map(|s| s.total()).collect());
            let step = |v: &[seed::FullSteps], f: fn(&seed::FullSteps) -> Duration| {
                ms(median(v.iter().map(f).collect()))
            };
            println!(
                "  full checkpoint medians: highwater new {:.1} / to_bytes {:.1} / write {:.1} ms ({:.1} MB); seed new {:.1} / to_bytes {:.1} / write {:.1} ms ({:.1} MB)",
                step(&to, |s| s.new), step(&to, |s| s.to_bytes), step(&to, |s| s.write), size.0 as f64 / 1e6,
                step(&ts, |s| s.new), step(&ts, |s| s.to_bytes), step(&ts, |s| s.write), size.1 as f64 / 1e6,
            );
            rows.push(Row {
                figure: "full checkpoint of 1 M keys (`new` + `to_bytes` + `create_checkpoint_with_state`; ours with fsync, seed without)",
                ours: format!("{:.0} ms", ms(o)),
                peer: format!("seed {:.0} ms", ms(s)),
                ratio: o.as_secs_f64() / s.as_secs_f64(),
                ratio_text: "of the seed's time",
                target: "≤ 1.2×",
                met: o.as_secs_f64() / s.as_secs_f64() <= 1.2,
            });
        }
    }

    // ---------------------------------------------------------------- restore
    if wants(&a, "restore") {
        let (mut ro, mut rs) = (Vec::new(), Vec::new());
        for r in 0..runs {
            if a.ours {
                let x = spawn_restore("ours", &our_cp, &base.join("ours-nowal"));
                assert_eq!(x.len, n);
                println!(
                    "  restore run {r}: highwater {:7.1} ms, peak RSS {} MB (before {} MB)",
                    ms(x.time),
                    x.hwm_kb / 1024,
                    x.before_kb / 1024
                );
                ro.push(x);
            }
            if a.seed {
                let x = spawn_restore("seed", &seed_cp, &base.join("seed-nowal.wal"));
                assert_eq!(x.len, n);
                println!(
                    "  restore run {r}: seed      {:7.1} ms, peak RSS {} MB (before {} MB)",
                    ms(x.time),
                    x.hwm_kb / 1024,
                    x.before_kb / 1024
                );
                rs.push(x);
            }
        }
        if a.ours && a.seed {
            let o = median(ro.iter().map(|x| x.time).collect());
            let s = median(rs.iter().map(|x| x.time).collect());
            let ho = ro.iter().map(|x| x.hwm_kb).max().unwrap_or(0) / 1024;
            let hs = rs.iter().map(|x| x.hwm_kb).max().unwrap_or(0) / 1024;
            rows.push(Row {
                figure: "restore: `recover()` of that checkpoint returning `state_snapshot` (peak RSS of the restoring process)",
                ours: format!("{:.0} ms, peak {ho} MB", ms(o)),
                peer: format!("seed {:.0} ms, peak {hs} MB", ms(s)),
                ratio: o.as_secs_f64() / s.as_secs_f64(),
                ratio_text: "of the seed's time",
                target: "≤ 0.1×",
                met: o.as_secs_f64() / s.as_secs_f64() <= 0.1,
            });
        }
    }
    if !a.keep {
        let _ = fs::remove_dir_all(&our_cp);
        let _ = fs::remove_dir_all(&seed_cp);
    }

    // ---------------------------------------------------------------- RocksDB peer
    if wants(&a, "mapped") || wants(&a, "bytes") || wants(&a, "round") {
        rocks_peer(&a, &base, &pairs, &mut rows);
    }

    if a.keep {
        println!(
            "kept {} (ours-cp, seed-cp: the full checkpoints)",
            base.display()
        );
    } else {
        let _ = fs::remove_dir_all(&base);
    }
    table(&rows);
}

fn rocks_peer(a: &Args, base: &Path, pairs: &[(Vec<u8>, Vec<u8>)], rows: &mut Vec<Row>) {
    let n = pairs.len();
    let runs = a.runs;
    let probe = workload::key(n * 2 / 3);
    let op_dir = fresh(base, "ours-op");
    fs::create_dir_all(&op_dir).expect("mkdir");
    let mut op = a.ours.then(|| ours::Operator::new(&op_dir, pairs));
    let rk_dir = fresh(base, "rocks");
    fs::create_dir_all(&rk_dir).expect("mkdir");
    let mut rk = a.seed.then(|| rocks::Rocks::new(&rk_dir, pairs));
    if let Some(rk) = &rk {
        println!("  RocksDB base:\n{}", rk.level_stats());
    }

    if wants(a, "mapped") {
        let (mut to, mut tr, mut tf) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            if op.is_some() {
                to.push(ours::mapped_open_get(&op_dir, &probe));
                tf.push(ours::find_latest(&op_dir));
            }
            if let Some(rk) = &rk {
                tr.push(rocks::open_get(&rk.base_checkpoint(), &probe));
            }
        }
        if a.ours && a.seed {
            let (o, r) = (median(to), median(tr));
            println!(
                "  mapped restore: highwater {:.3} ms (newest id + view + get); CheckpointStore::find_latest alone (verifies every byte) {:.1} ms",
                ms(o),
                ms(median(tf))
            );
            rows.push(Row {
                figure: "mapped restore (`CheckpointStore`: newest id + `open_state_view` + first `get`) vs RocksDB read-only open + `get`",
                ours: format!("{:.2} ms", ms(o)),
                peer: format!("RocksDB {:.2} ms", ms(r)),
                ratio: o.as_secs_f64() / r.as_secs_f64(),
                ratio_text: "of RocksDB's time",
                target: "(0.06× before)",
                met: true,
            });
        }
    }

    // Four rounds each, one side at a time so the process's write counter
    // (wchar) is that side's alone; RocksDB's compactions are waited for.
    let mut round_o = Vec::new();
    let mut round_r = Vec::new();
    let mut steps_o = Vec::new();
    let mut steps_r = Vec::new();
    let mut round_no = 0;
    let (mut bytes_o, mut bytes_r) = (0u64, 0u64);
    if wants(a, "bytes") || wants(a, "round") {
        if let Some(op) = &mut op {
            let w0 = wchar();
            for r in 0..4 {
                let st = op.round(workload::one_percent(n, r));
                round_o.push(st.total());
                steps_o.push(st);
            }
            bytes_o = wchar() - w0;
        }
        if let Some(rk) = &mut rk {
            let w0 = wchar();
            for r in 0..4 {
                let ch = workload::one_percent(n, r);
                let (p, f, c) = rk.round(&ch);
                round_r.push(p + f + c);
                steps_r.push((p, f, c));
            }
            rk.settle();
            bytes_r = wchar() - w0;
            println!("  RocksDB after 4 rounds:\n{}", rk.level_stats());
        }
        round_no = 4;
        if a.ours && a.seed {
            println!(
                "  bytes written over 4 rounds of 1%: highwater {:.2} MB, RocksDB {:.2} MB (flushes + compactions + checkpoints)",
                bytes_o as f64 / 1e6,
                bytes_r as f64 / 1e6
            );
            rows.push(Row {
                figure: "bytes written over four incremental rounds (1% each)",
                ours: format!("{:.1} MB", bytes_o as f64 / 1e6),
                peer: format!("RocksDB {:.1} MB", bytes_r as f64 / 1e6),
                ratio: bytes_o as f64 / bytes_r as f64,
                ratio_text: "of RocksDB's bytes",
                target: "(0.04× before)",
                met: true,
            });
        }
    }

    if wants(a, "round") {
        for _ in 0..runs {
            if let Some(op) = &mut op {
                let st = op.round(workload::one_percent(n, round_no));
                round_o.push(st.total());
                steps_o.push(st);
            }
            if let Some(rk) = &mut rk {
                let ch = workload::one_percent(n, round_no);
                let (p, f, c) = rk.round(&ch);
                round_r.push(p + f + c);
                steps_r.push((p, f, c));
            }
            round_no += 1;
        }
        if a.ours {
            println!(
                "  1% round, highwater medians: TrackedState put x10k {:.2} ms, delta() {:.2} ms, create_checkpoint {:.2} ms",
                ms(median(steps_o.iter().map(|s| s.puts).collect())),
                ms(median(steps_o.iter().map(|s| s.delta).collect())),
                ms(median(steps_o.iter().map(|s| s.checkpoint).collect())),
            );
        }
        if a.seed {
            println!(
                "  1% round, RocksDB medians: put x10k {:.2} ms, flush {:.2} ms, checkpoint {:.2} ms",
                ms(median(steps_r.iter().map(|s| s.0).collect())),
                ms(median(steps_r.iter().map(|s| s.1).collect())),
                ms(median(steps_r.iter().map(|s| s.2).collect())),
            );
        }
        if a.ours && a.seed {
            let (o, r) = (median(round_o), median(round_r));
            rows.push(Row {
                figure: "one incremental round at 1% (10 k `TrackedState` puts + `delta()` + delta checkpoint) vs RocksDB puts + flush + checkpoint",
                ours: format!("{:.1} ms", ms(o)),
                peer: format!("RocksDB {:.1} ms", ms(r)),
                ratio: o.as_secs_f64() / r.as_secs_f64(),
                ratio_text: "of RocksDB's time",
                target: "≤ 0.7×",
                met: o.as_secs_f64() / r.as_secs_f64() <= 0.7,
            });
        }
    }
    drop(rk);
}
