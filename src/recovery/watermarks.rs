//! A watermark is a promise that only grows: no event older than it is
//! still to come. Recovery overlays the checkpoint's watermarks with those of
//! every replayed Commit (and `Watermarks` entry), keeping the maximum, so a
//! lower one in the log (a source that restarted behind, a bug upstream)
//! never lowers what recovery returns; each such regression is counted in the
//! report (`RecoveryReport::watermark_regressions`).

use std::collections::HashMap;

/// Raises `current` to `new` if that is higher; returns whether `new` was a
/// regression (lower than `current`).
pub(crate) fn raise(current: &mut Option<i64>, new: Option<i64>) -> bool {
    match (*current, new) {
        (_, None) => false,
        (Some(c), Some(n)) if n < c => true,
        (_, n) => {
            *current = n;
            false
        }
    }
}

/// [`raise`] for every partition in `new`; returns how many regressed.
pub(crate) fn raise_each(current: &mut HashMap<String, i64>, new: HashMap<String, i64>) -> u64 {
    let mut regressions = 0;
    for (partition, mark) in new {
        let slot = current.entry(partition).or_insert(mark);
        if mark < *slot {
            regressions += 1;
        } else {
            *slot = mark;
        }
    }
    regressions
}

/// Raises `marks` (a new checkpoint's watermarks) to `previous`'s (the
/// checkpoint before it) where they are lower: the combined one, and each
/// partition `marks` records. Returns how many were raised.
pub(crate) fn raise_to_previous(
    combined: &mut Option<i64>,
    marks: &mut HashMap<String, i64>,
    previous_combined: Option<i64>,
    previous: &HashMap<String, i64>,
) -> u64 {
    let mut kept = previous_combined;
    let mut regressions = u64::from(raise(&mut kept, *combined));
    *combined = kept.or(*combined);
    for (partition, mark) in marks.iter_mut() {
        if let Some(&before) = previous.get(partition) {
            if *mark < before {
                *mark = before;
                regressions += 1;
            }
        }
    }
    regressions
}

/// Gives every partition with an offset but no watermark of its own the
/// combined watermark. A checkpoint or Commit written through the seed-style
/// API records only the combined watermark; this gives each of its
/// partitions that watermark. A partition's own recorded watermark is never
/// changed (a partition added behind the others keeps its lower one).
pub(crate) fn settle(
    watermarks: &mut HashMap<String, i64>,
    offsets: &HashMap<String, u64>,
    combined: Option<i64>,
) {
    let Some(combined) = combined else { return };
    for partition in offsets.keys() {
        watermarks.entry(partition.clone()).or_insert(combined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_watermark_never_lowers_and_is_counted() {
        let mut w = Some(10);
        assert!(!raise(&mut w, Some(12)));
        assert!(raise(&mut w, Some(5)));
        assert!(!raise(&mut w, None));
        assert_eq!(w, Some(12));
        let mut each = HashMap::from([("a".to_string(), 10)]);
        let n = raise_each(
            &mut each,
            HashMap::from([("a".to_string(), 3), ("b".to_string(), 7)]),
        );
        assert_eq!(n, 1);
        assert_eq!(each["a"], 10);
        assert_eq!(each["b"], 7);
    }

    #[test]
    fn partitions_take_the_combined_watermark_when_they_record_none() {
        let offsets = HashMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
        let mut marks = HashMap::from([("b".to_string(), 3)]);
        settle(&mut marks, &offsets, Some(5));
        // b keeps its own (a partition that joined behind the others).
        assert_eq!(
            marks,
            HashMap::from([("a".to_string(), 5), ("b".to_string(), 3)])
        );
    }
}
