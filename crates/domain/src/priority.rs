//! Task priority: 1 (lowest) to 10 (highest), default 5.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::ValidationError;

/// A task's priority, 1 (lowest) to 10 (highest). Default 5. Higher runs first under the
/// `priority` strategy and is drawn more often under `weighted_random`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Priority(u8);

impl Priority {
    /// The lowest priority.
    pub const MIN: Priority = Priority(1);
    /// The highest priority.
    pub const MAX: Priority = Priority(10);
    /// The priority of a task that names none.
    pub const DEFAULT: Priority = Priority(5);

    /// Validates a priority.
    ///
    /// # Errors
    /// Any value outside 1–10.
    pub fn new(value: i64) -> Result<Self, ValidationError> {
        if (1..=10).contains(&value) {
            Ok(Priority(value as u8))
        } else {
            Err(ValidationError::new(
                "priority",
                format!("{value} is out of range"),
                "an integer from 1 (lowest) to 10 (highest); default 5",
            ))
        }
    }

    /// The numeric value, 1–10.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// All priorities from highest to lowest.
    pub fn descending() -> impl Iterator<Item = Priority> {
        (1..=10u8).rev().map(Priority)
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::DEFAULT
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Priority::new(v).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_bounds() {
        assert_eq!(Priority::new(1).unwrap().get(), 1);
        assert_eq!(Priority::new(10).unwrap().get(), 10);
        for bad in [0, 11, -1, 255, i64::MAX] {
            let e = Priority::new(bad).unwrap_err();
            assert_eq!(e.field, "priority");
            assert!(e.problem.contains(&bad.to_string()));
            assert!(e.accepted.contains("1 (lowest) to 10 (highest)"));
        }
        assert_eq!(Priority::default().get(), 5);
        let levels: Vec<u8> = Priority::descending().map(Priority::get).collect();
        assert_eq!(levels, vec![10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn priority_deserialize_validates() {
        assert!(serde_json::from_str::<Priority>("11").is_err());
        assert_eq!(serde_json::from_str::<Priority>("7").unwrap().get(), 7);
    }
}
