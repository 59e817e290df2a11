//! Claiming strategies: which eligible task a worker gets next. A strategy is a value here;
//! each storage adapter turns it into its own indexed queries.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::ValidationError;
use crate::task::Priority;

/// The order in which eligible tasks are claimed. Eligible means queued with
/// `run_after <= now`; a task whose lease lapsed is rescued before any queued task.
///
/// | strategy | order |
/// | --- | --- |
/// | `Fifo` | oldest first: `run_after` ascending, then id ascending |
/// | `Lifo` (default) | newest first: `run_after` descending, then id descending |
/// | `Priority` | highest priority first, then oldest (`run_after`, id ascending) |
/// | `WeightedRandom` | a priority level drawn at random, then that level's oldest task |
///
/// `run_after` is the instant a task became eligible: its enqueue time unless it was
/// delayed or is waiting for a retry. Ties are always broken by id.
///
/// **WeightedRandom** draws among the priority levels that have at least one eligible task;
/// level `p` is drawn with probability `p / Σ q` over those levels (see [`pick_weighted_level`]).
/// No level starves: a non-empty level is drawn with probability at least 1/55 on every
/// claim, and within a level the order is FIFO, so every task is eventually claimed. The
/// weight is per level, not per task: with 1,000 tasks at priority 1 and one at priority 10,
/// priority 10 is drawn 10 times in 11, not 10 times in 1,010. This is what makes the claim
/// O(log n): it needs one index probe per level, never a count of the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimingStrategy {
    /// Oldest eligible first.
    Fifo,
    /// Newest eligible first (the default: fresh work first, as the product collects ideas).
    #[default]
    Lifo,
    /// Highest priority first, then oldest.
    Priority,
    /// A priority level drawn with probability proportional to its value, then its oldest task.
    WeightedRandom,
}

impl ClaimingStrategy {
    /// Every strategy.
    pub const ALL: [ClaimingStrategy; 4] = [
        ClaimingStrategy::Fifo,
        ClaimingStrategy::Lifo,
        ClaimingStrategy::Priority,
        ClaimingStrategy::WeightedRandom,
    ];

    /// The canonical name (`fifo`, `lifo`, `priority`, `weighted_random`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ClaimingStrategy::Fifo => "fifo",
            ClaimingStrategy::Lifo => "lifo",
            ClaimingStrategy::Priority => "priority",
            ClaimingStrategy::WeightedRandom => "weighted_random",
        }
    }
}

impl fmt::Display for ClaimingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClaimingStrategy {
    type Err = ValidationError;

    /// Case-insensitive; `-` and `_` are interchangeable (`weighted-random`). An unknown name
    /// is an error listing the valid ones: there is no silent fallback.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        ClaimingStrategy::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| {
                ValidationError::new(
                    "strategy",
                    format!(
                        "{:?} is not a claiming strategy",
                        crate::task::truncate_for_message(s)
                    ),
                    "fifo, lifo, priority, weighted_random",
                )
            })
    }
}

/// WeightedRandom's draw: given the priority levels that have eligible tasks (any order) and
/// a uniform random `sample`, returns level `p` with probability `p / Σ q`. Returns `None`
/// only when `levels` is empty. Pure, so adapters share one definition.
pub fn pick_weighted_level(levels: &[Priority], sample: u64) -> Option<Priority> {
    let total: u64 = levels.iter().map(|p| u64::from(p.get())).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = sample % total;
    let mut sorted = levels.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    for p in sorted {
        let w = u64::from(p.get());
        if ticket < w {
            return Some(p);
        }
        ticket -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_is_lifo() {
        assert_eq!(ClaimingStrategy::default(), ClaimingStrategy::Lifo);
    }

    #[test]
    fn parses_case_insensitively() {
        for (s, want) in [
            ("FIFO", ClaimingStrategy::Fifo),
            ("Lifo", ClaimingStrategy::Lifo),
            (" priority ", ClaimingStrategy::Priority),
            ("weighted_random", ClaimingStrategy::WeightedRandom),
            ("Weighted-Random", ClaimingStrategy::WeightedRandom),
        ] {
            assert_eq!(s.parse::<ClaimingStrategy>().unwrap(), want, "{s}");
        }
    }

    #[test]
    fn unknown_strategy_lists_valid_ones() {
        let e = "random".parse::<ClaimingStrategy>().unwrap_err();
        assert_eq!(e.field, "strategy");
        assert!(e.problem.contains("\"random\""));
        assert_eq!(e.accepted, "fifo, lifo, priority, weighted_random");
        assert!("".parse::<ClaimingStrategy>().is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in ClaimingStrategy::ALL {
            assert_eq!(s.as_str().parse::<ClaimingStrategy>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
    }

    fn p(v: i64) -> Priority {
        Priority::new(v).unwrap()
    }

    #[test]
    fn weighted_pick_is_exactly_proportional_over_all_tickets() {
        let levels = [p(1), p(5), p(10)];
        let mut counts = [0u32; 11];
        for sample in 0..16u64 {
            counts[pick_weighted_level(&levels, sample).unwrap().get() as usize] += 1;
        }
        assert_eq!((counts[1], counts[5], counts[10]), (1, 5, 10));
        assert_eq!(pick_weighted_level(&[], 3), None);
    }

    proptest! {
        #[test]
        fn weighted_pick_returns_a_present_level(
            raw in proptest::collection::vec(1i64..=10, 1..10),
            sample in any::<u64>(),
        ) {
            let levels: Vec<Priority> = raw.iter().map(|&v| p(v)).collect();
            let got = pick_weighted_level(&levels, sample).unwrap();
            prop_assert!(levels.contains(&got));
        }
    }
}
