//! Which crash points, failure points and damaged bytes a test tries: a seeded
//! sample in the default (CI) mode, everything with
//! `HIGHWATER_CRASH_EXHAUSTIVE=1`. `HIGHWATER_CRASH_SEED=n` picks another sample;
//! every failure message names the seed.

/// The run's mode and seed.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub seed: u64,
    pub exhaustive: bool,
}

impl Settings {
    pub fn from_env() -> Self {
        let seed = std::env::var("HIGHWATER_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_2026);
        let exhaustive = std::env::var("HIGHWATER_CRASH_EXHAUSTIVE").is_ok_and(|v| v == "1");
        Settings { seed, exhaustive }
    }

    /// How to reproduce a failure.
    pub fn rerun_hint(&self) -> String {
        format!(
            "seed {} (rerun with HIGHWATER_CRASH_SEED={}{})",
            self.seed,
            self.seed,
            if self.exhaustive {
                " HIGHWATER_CRASH_EXHAUSTIVE=1"
            } else {
                ""
            }
        )
    }

    /// All of `0..total`, or `sample` of them (always the first and the last).
    pub fn choose(&self, total: u64, sample: usize, rng: &mut Rng) -> Vec<u64> {
        if self.exhaustive || total as usize <= sample {
            return (0..total).collect();
        }
        let mut points: Vec<u64> = (0..sample.saturating_sub(2))
            .map(|_| rng.below(total))
            .collect();
        points.extend([0, total - 1]);
        points.sort_unstable();
        points.dedup();
        points
    }
}

/// A reproducible pseudo-random stream (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
