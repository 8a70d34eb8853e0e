//! `state get` and `state dump`: a checkpoint's key/value state read through
//! the zero-copy view (memory-mapped files, delta chain merged at read time;
//! only the blocks read are verified).

use crate::args::StateSource;
use crate::bytes::{parse_hex, show, show_at_most, show_text, JsonBytes, PREVIEW};
use crate::output::{Exit, Failure, Human, Outcome, Problem};
use highwater::{CheckpointStateView, CheckpointStore};
use serde::Serialize;
use std::io::{self, Write};

/// The checkpoint and part a state command reads, opened as a view.
struct Opened {
    checkpoint: u64,
    part: String,
    view: CheckpointStateView,
}

fn open(source: &StateSource) -> Result<Opened, Failure> {
    let (store, checkpoint, part) = resolve(source)?;
    let view = store.open_state_view(checkpoint, &part)?;
    Ok(Opened {
        checkpoint,
        part,
        view,
    })
}

/// The store, checkpoint and part a command reading state names: the
/// checkpoint recovery would use unless `--checkpoint`, the default part
/// unless `--part`.
pub fn resolve(source: &StateSource) -> Result<(CheckpointStore, u64, String), Failure> {
    let store = crate::keys::store(&source.dir);
    let checkpoint = match source.checkpoint {
        Some(id) => id,
        None => match store.find_latest()? {
            highwater::LatestCheckpoint {
                metadata: Some(meta),
                rejected,
                ..
            } => {
                // Never answer from an older checkpoint silently.
                for skipped in &rejected {
                    eprintln!(
                        "highwater: note: answering from checkpoint {} (the newest restorable); skipped newer checkpoint {}: {}",
                        meta.id,
                        skipped.id,
                        crate::bytes::sanitize(&skipped.reason)
                    );
                }
                meta.id
            }
            _ => {
                return Err(Failure::message(
                    format!("no restorable checkpoint in {}", source.dir.display()),
                    Exit::NotFound,
                ))
            }
        },
    };
    let unreadable = |e| why_unreadable(&store, checkpoint, e);
    let names = store.part_names(checkpoint).map_err(unreadable)?;
    let part = match &source.part {
        Some(p) if names.contains(p) => Some(p.clone()),
        Some(_) => None,
        None => store.default_part(checkpoint).map_err(unreadable)?,
    };
    let Some(part) = part else {
        let listed: Vec<String> = names.iter().map(|n| show_text(n)).collect();
        let what = match &source.part {
            Some(p) => format!("no part {} in", show_text(p)),
            None => "choose a part with --part; there is no default part in".to_string(),
        };
        return Err(Failure::message(
            format!(
                "{what} checkpoint {checkpoint} (parts: {})",
                listed.join(", ")
            ),
            Exit::NotFound,
        ));
    };
    Ok((store, checkpoint, part))
}

/// The most precise error for a checkpoint whose chain does not load: the
/// damage in its own files if any (exit 1), else `e` (it is gone: exit 3).
fn why_unreadable(store: &CheckpointStore, id: u64, e: highwater::Error) -> Failure {
    match store.verify_checkpoint(id) {
        Err(damage) if damage.is_corruption() => damage.into(),
        _ => e.into(),
    }
}

fn key_bytes(text: &str, hex: bool) -> Result<Vec<u8>, Failure> {
    if hex {
        parse_hex(text).map_err(|e| Failure::message(e, Exit::Failed))
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

/// What `state get` found.
#[derive(Debug, Serialize)]
struct GetResult {
    checkpoint: u64,
    part: String,
    key: JsonBytes,
    value: Option<JsonBytes>,
    #[serde(skip)]
    shown: String,
}

impl Human for GetResult {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.shown)
    }
}

/// `state get DIR KEY`: prints the value; exit 3 when the key is absent.
pub fn get(source: &StateSource, key: &str, hex: bool) -> Result<Outcome, Failure> {
    let key = key_bytes(key, hex)?;
    let opened = open(source)?;
    let value = opened.view.get(&key)?;
    let Some(value) = value else {
        return Err(Failure::message(
            format!(
                "key {} not found in part {} of checkpoint {}",
                show(&key),
                show_text(&opened.part),
                opened.checkpoint
            ),
            Exit::NotFound,
        ));
    };
    let result = GetResult {
        checkpoint: opened.checkpoint,
        part: opened.part.clone(),
        key: JsonBytes::of(&key),
        value: Some(JsonBytes::of(value)),
        shown: show(value),
    };
    Ok(Outcome::new(result, Exit::Ok))
}

/// One pair of a JSON dump.
#[derive(Debug, Serialize)]
struct PairJson {
    key: JsonBytes,
    value: JsonBytes,
}

/// `state dump DIR [--prefix P] [--limit N]`: streams the pairs in key order;
/// exit 1 when a damaged block stops it.
pub fn dump(
    source: &StateSource,
    prefix: Option<&str>,
    hex: bool,
    limit: Option<u64>,
    json: bool,
) -> Result<Exit, Failure> {
    let prefix = prefix.map(|p| key_bytes(p, hex)).transpose()?;
    let opened = open(source)?;
    let pairs = opened.view.prefix(prefix.as_deref().unwrap_or_default())?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let w = |r: io::Result<()>| r.map_err(|e| Failure::output(&e));
    if json {
        let head = serde_json::json!({ "checkpoint": opened.checkpoint, "part": opened.part });
        let head = head.to_string();
        w(write!(out, "{},\"pairs\":[", &head[..head.len() - 1]))?;
    }
    let mut count = 0u64;
    let mut failed = None;
    for pair in pairs {
        if limit.is_some_and(|n| count >= n) {
            break;
        }
        let (k, v) = match pair {
            Ok(kv) => kv,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        if json {
            let sep = if count == 0 { "" } else { "," };
            let pair = PairJson {
                key: JsonBytes::of(k),
                value: JsonBytes::of(v),
            };
            let pair = serde_json::to_string(&pair).expect("pairs serialize");
            w(write!(out, "{sep}\n{pair}"))?;
        } else {
            w(writeln!(
                out,
                "{}  {}",
                show_at_most(k, PREVIEW),
                show_at_most(v, PREVIEW)
            ))?;
        }
        count += 1;
    }
    let problem = failed.as_ref().map(Problem::of);
    if json {
        let tail = serde_json::json!({ "count": count, "error": problem });
        let tail = tail.to_string();
        w(writeln!(out, "\n],{}", &tail[1..]))?;
    } else {
        w(writeln!(
            out,
            "{count} pairs (checkpoint {}, part {})",
            opened.checkpoint,
            show_text(&opened.part)
        ))?;
    }
    w(out.flush())?;
    match failed {
        Some(e) => {
            if !json {
                eprintln!(
                    "highwater: error: {}",
                    crate::bytes::sanitize(&e.to_string())
                );
            }
            Ok(Failure::of(&e).exit_code())
        }
        None => Ok(Exit::Ok),
    }
}
