//! Schema migrations as data, shared by every storage engine: the embedded steps, their
//! checksums, the plan for going up or down, and the errors that refuse a database.
//!
//! An adapter supplies only what touches its engine (list the applied rows, apply a step,
//! revert a step, hold its lock) and asks [`Migrations`] everything else, so ordering,
//! checksums and refusals read the same on SQLite and PostgreSQL.

use serde::Serialize;

/// One embedded migration: the SQL that applies it and the SQL that undoes it.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, from 1, consecutive.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// SQL applying it.
    pub up: &'static str,
    /// SQL undoing it.
    pub down: &'static str,
}

impl Migration {
    /// FNV-1a (64-bit) of the up SQL, as 16 hex digits: detects edits, not attacks.
    pub fn checksum(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.up.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// One row of a database's record of applied migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Version.
    pub version: i64,
    /// Name recorded when it was applied.
    pub name: String,
    /// Checksum recorded when it was applied.
    pub checksum: String,
    /// When it was applied (ms since the epoch).
    pub applied_at: i64,
}

/// One migration's state in a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    /// Version.
    pub version: i64,
    /// Name.
    pub name: String,
    /// When it was applied (ms since the epoch), if it was.
    pub applied_at: Option<i64>,
}

/// Why a database's schema, or a migration target, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    /// The database was migrated by a newer PrismQ.
    #[error("the database's schema is version {found}, newer than this binary knows (version {known}); upgrade prismq, or migrate the database down with the newer binary")]
    SchemaTooNew {
        /// Highest version applied in the database.
        found: i64,
        /// Highest version this binary embeds.
        known: i64,
    },
    /// An applied migration differs from the one embedded in this binary.
    #[error("migration {version} ({name}) was applied with checksum {applied} but this binary's copy has checksum {embedded}; the schema was changed outside PrismQ or by a different build")]
    ChecksumMismatch {
        /// The migration's version.
        version: i64,
        /// Its name.
        name: String,
        /// Checksum recorded in the database.
        applied: String,
        /// Checksum of the embedded SQL.
        embedded: String,
    },
    /// A migration target that does not exist.
    #[error("there is no migration version {0}; known versions are 0 (empty) to {1}")]
    UnknownVersion(i64, i64),
}

/// An engine's embedded migrations, in order.
#[derive(Debug, Clone, Copy)]
pub struct Migrations(&'static [Migration]);

impl Migrations {
    /// The list, which must number its steps 1, 2, 3, … (checked by [`Migrations::verify`]
    /// in each adapter's tests).
    pub const fn new(steps: &'static [Migration]) -> Self {
        Migrations(steps)
    }

    /// Every step, oldest first.
    pub fn steps(&self) -> &'static [Migration] {
        self.0
    }

    /// The newest version (0 when there is none).
    pub fn latest(&self) -> i64 {
        self.0.last().map_or(0, |m| m.version)
    }

    /// Whether the steps are numbered 1, 2, 3, … with distinct names: an adapter's test
    /// calls it, so a badly numbered list never ships.
    pub fn verify(&self) -> Result<(), String> {
        for (i, m) in self.0.iter().enumerate() {
            let want = i64::try_from(i).unwrap_or(i64::MAX) + 1;
            if m.version != want {
                return Err(format!(
                    "migration {:?} is numbered {}, expected {want}",
                    m.name, m.version
                ));
            }
            if self.0[..i].iter().any(|o| o.name == m.name) {
                return Err(format!("two migrations are named {:?}", m.name));
            }
        }
        Ok(())
    }

    /// The version a database is at, from its applied rows; refuses a schema migrated by a
    /// newer binary or one whose applied steps differ from the embedded ones.
    ///
    /// # Errors
    /// [`MigrationError::SchemaTooNew`] and [`MigrationError::ChecksumMismatch`].
    pub fn check(&self, applied: &[Applied]) -> Result<i64, MigrationError> {
        let mut current = 0;
        for a in applied {
            let Some(m) = self.0.iter().find(|m| m.version == a.version) else {
                return Err(MigrationError::SchemaTooNew {
                    found: a.version,
                    known: self.latest(),
                });
            };
            let embedded = m.checksum();
            if a.checksum != embedded {
                return Err(MigrationError::ChecksumMismatch {
                    version: a.version,
                    name: a.name.clone(),
                    applied: a.checksum.clone(),
                    embedded,
                });
            }
            current = current.max(a.version);
        }
        Ok(current)
    }

    /// Every known step and when it was applied, after [`Migrations::check`].
    ///
    /// # Errors
    /// As [`Migrations::check`].
    pub fn status(&self, applied: &[Applied]) -> Result<Vec<MigrationStatus>, MigrationError> {
        self.check(applied)?;
        Ok(self
            .0
            .iter()
            .map(|m| MigrationStatus {
                version: m.version,
                name: m.name.to_owned(),
                applied_at: applied
                    .iter()
                    .find(|a| a.version == m.version)
                    .map(|a| a.applied_at),
            })
            .collect())
    }

    /// The steps `up` to `target` (default the latest) may apply, oldest first. Each is
    /// applied only if the database, re-checked under the engine's lock, is still below it.
    ///
    /// # Errors
    /// [`MigrationError::UnknownVersion`] for a target outside 0..=latest.
    pub fn up_to(&self, target: Option<i64>) -> Result<Vec<&'static Migration>, MigrationError> {
        let target = target.unwrap_or_else(|| self.latest());
        self.known(target)?;
        Ok(self.0.iter().filter(|m| m.version <= target).collect())
    }

    /// The steps `down` to `target` may revert, newest first (0 reverts everything). Each is
    /// reverted only if the database, re-checked under the engine's lock, still has it.
    ///
    /// # Errors
    /// [`MigrationError::UnknownVersion`] for a target outside 0..=latest.
    pub fn down_to(&self, target: i64) -> Result<Vec<&'static Migration>, MigrationError> {
        self.known(target)?;
        Ok(self.0.iter().rev().filter(|m| m.version > target).collect())
    }

    fn known(&self, target: i64) -> Result<(), MigrationError> {
        if (0..=self.latest()).contains(&target) {
            Ok(())
        } else {
            Err(MigrationError::UnknownVersion(target, self.latest()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Migration] = &[
        Migration {
            version: 1,
            name: "one",
            up: "CREATE TABLE a (x)",
            down: "DROP TABLE a",
        },
        Migration {
            version: 2,
            name: "two",
            up: "ALTER TABLE a ADD y",
            down: "ALTER TABLE a DROP y",
        },
    ];
    const M: Migrations = Migrations::new(STEPS);

    fn applied(version: i64) -> Applied {
        let m = STEPS[usize::try_from(version - 1).unwrap()];
        Applied {
            version,
            name: m.name.into(),
            checksum: m.checksum(),
            applied_at: version * 10,
        }
    }

    #[test]
    fn checksums_are_fnv1a_of_the_up_sql() {
        let empty = Migration {
            version: 1,
            name: "e",
            up: "",
            down: "",
        };
        assert_eq!(empty.checksum(), "cbf29ce484222325");
        assert_ne!(STEPS[0].checksum(), STEPS[1].checksum());
    }

    #[test]
    fn check_reports_the_version_and_refuses_newer_or_altered_schemas() {
        assert_eq!(M.check(&[]), Ok(0));
        assert_eq!(M.check(&[applied(1), applied(2)]), Ok(2));
        let mut future = applied(2);
        future.version = 7;
        assert_eq!(
            M.check(&[applied(1), future]),
            Err(MigrationError::SchemaTooNew { found: 7, known: 2 })
        );
        let mut altered = applied(1);
        altered.checksum = "x".into();
        let e = M.check(&[altered]).unwrap_err();
        assert!(
            matches!(&e, MigrationError::ChecksumMismatch { version: 1, applied, .. } if applied == "x")
        );
        assert!(e.to_string().contains("changed outside PrismQ"), "{e}");
    }

    #[test]
    fn status_lists_every_step_with_when_it_was_applied() {
        let s = M.status(&[applied(1)]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].version, s[0].applied_at), (1, Some(10)));
        assert_eq!((s[1].name.as_str(), s[1].applied_at), ("two", None));
    }

    #[test]
    fn plans_go_up_oldest_first_and_down_newest_first_within_the_known_range() {
        let v = |steps: Vec<&Migration>| steps.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(v(M.up_to(None).unwrap()), [1, 2]);
        assert_eq!(v(M.up_to(Some(1)).unwrap()), [1]);
        assert_eq!(v(M.down_to(0).unwrap()), [2, 1]);
        assert_eq!(v(M.down_to(2).unwrap()), Vec::<i64>::new());
        assert_eq!(
            M.up_to(Some(3)).unwrap_err(),
            MigrationError::UnknownVersion(3, 2)
        );
        let e = M.down_to(-1).unwrap_err();
        assert!(e.to_string().contains("known versions are 0 (empty) to 2"));
    }

    #[test]
    fn verify_refuses_gaps_and_repeated_names() {
        assert_eq!(M.verify(), Ok(()));
        const GAP: &[Migration] = &[Migration {
            version: 2,
            name: "two",
            up: "",
            down: "",
        }];
        assert!(Migrations::new(GAP)
            .verify()
            .unwrap_err()
            .contains("expected 1"));
        const TWICE: &[Migration] = &[
            STEPS[0],
            Migration {
                version: 2,
                name: "one",
                up: "",
                down: "",
            },
        ];
        assert!(Migrations::new(TWICE)
            .verify()
            .unwrap_err()
            .contains("two migrations"));
    }
}
