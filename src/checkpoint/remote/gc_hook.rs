//! When a writer collects garbage: after a commit, at most once per
//! [`GC_INTERVAL`] (each run lists the whole location).

use std::time::{Duration, Instant};

/// The least time between two collections of one writer.
pub(crate) const GC_INTERVAL: Duration = Duration::from_secs(60);

/// The last collection of a writer.
#[derive(Debug, Default)]
pub(crate) struct GcSchedule {
    last: Option<Instant>,
}

impl GcSchedule {
    /// True when a collection is due now (`every`: the interval).
    pub(crate) fn due(&self, every: Duration) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= every)
    }

    /// Notes a collection started now.
    pub(crate) fn ran(&mut self) {
        self.last = Some(Instant::now());
    }
}
