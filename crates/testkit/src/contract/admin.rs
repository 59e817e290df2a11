//! Obligations of `SchemaAdmin`: status lists every known migration, down and up move
//! between versions and are idempotent, an unknown target is refused with nothing changed,
//! the engine names itself, and `validate` passes on a healthy store without writing to it.
//! A store without a schema (the in-memory fake, [`SchemaKind::None`]) lists no migration,
//! knows only version 0 and changes nothing on up or down. A subject without schema
//! administration (a remote client) passes over them.

use prismq_domain::ports::validation::{Outcome, ValidateOptions};
use prismq_domain::ports::{SchemaAdmin, StorageError, StorageProblem};
use prismq_domain::schema::MigrationError;

use super::support::setup;
use super::{ContractEnv, SchemaKind, Subject};
use crate::fixtures::new_task;

/// The subject's schema administration after its store was used once (a store that
/// migrates on first use has migrated).
async fn admin(s: &Subject) -> Option<std::sync::Arc<dyn SchemaAdmin>> {
    let admin = s.admin.clone()?;
    s.queue.stats().await.expect("stats");
    Some(admin)
}

fn latest(rows: &[prismq_domain::schema::MigrationStatus]) -> i64 {
    rows.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Every known migration, oldest first, numbered 1, 2, 3, …, each applied on a store in use;
/// none for a store without a schema.
pub async fn status_lists_every_migration_applied(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let Some(admin) = admin(&s).await else { return };
    let rows = admin.migration_status().await.expect("status");
    assert_eq!(rows.is_empty(), s.schema == SchemaKind::None, "{rows:?}");
    for (i, m) in rows.iter().enumerate() {
        assert_eq!(m.version, i64::try_from(i).unwrap() + 1, "{rows:?}");
        assert!(m.applied_at.is_some(), "{m:?} not applied");
        assert!(!m.name.is_empty());
    }
}

/// Down to the version before the latest reverts exactly the latest; up applies it again;
/// a second up applies nothing. Without a schema, down to 0 and up (to the latest, or to 0)
/// change nothing.
pub async fn down_then_up_returns_to_the_latest_schema(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let Some(admin) = admin(&s).await else { return };
    if s.schema == SchemaKind::None {
        let none = Vec::<i64>::new();
        assert_eq!(admin.migrate_down(0).await.expect("down"), none);
        assert_eq!(admin.migrate_up(None).await.expect("up"), none);
        assert_eq!(admin.migrate_up(Some(0)).await.expect("up to 0"), none);
        assert_eq!(admin.migration_status().await.expect("status"), []);
        return;
    }
    let top = latest(&admin.migration_status().await.expect("status"));
    assert_eq!(admin.migrate_down(top - 1).await.expect("down"), [top]);
    let rows = admin.migration_status().await.expect("status");
    assert_eq!(
        rows.last().map(|m| (m.version, m.applied_at)),
        Some((top, None))
    );
    assert!(rows[..rows.len() - 1]
        .iter()
        .all(|m| m.applied_at.is_some()));
    assert_eq!(
        admin.migrate_down(top - 1).await.expect("down again"),
        Vec::<i64>::new()
    );
    assert_eq!(admin.migrate_up(None).await.expect("up"), [top]);
    assert_eq!(
        admin.migrate_up(None).await.expect("up again"),
        Vec::<i64>::new()
    );
    let rows = admin.migration_status().await.expect("status");
    assert!(rows.iter().all(|m| m.applied_at.is_some()), "{rows:?}");
}

fn assert_unknown(e: StorageError, target: i64) {
    assert_eq!(e.problem(), StorageProblem::Invalid, "{e}");
    match e {
        StorageError::Migration(MigrationError::UnknownVersion(t, _)) => assert_eq!(t, target),
        other => panic!("expected UnknownVersion({target}), got {other:?}"),
    }
}

/// A target beyond the latest (0 without a schema) or below 0 is `UnknownVersion` (an
/// `Invalid` problem), and nothing is applied or reverted.
pub async fn unknown_targets_are_refused_and_change_nothing(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_clock, s) = setup(factory);
    let Some(admin) = admin(&s).await else { return };
    let before = admin.migration_status().await.expect("status");
    let top = latest(&before);
    assert_eq!(top == 0, s.schema == SchemaKind::None, "{before:?}");
    assert_unknown(admin.migrate_up(Some(top + 1)).await.unwrap_err(), top + 1);
    assert_unknown(admin.migrate_down(-1).await.unwrap_err(), -1);
    assert_unknown(admin.migrate_down(top + 5).await.unwrap_err(), top + 5);
    assert_eq!(admin.migration_status().await.expect("status"), before);
}

/// The engine's name and version are given.
pub async fn server_info_names_the_engine(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let Some(admin) = admin(&s).await else { return };
    let info = admin.server_info().await.expect("server info");
    assert!(!info.engine.is_empty(), "{info:?}");
    assert!(
        info.version
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit()),
        "{info:?}"
    );
}

/// Checks 2 to 8 come back in order, none failing on a healthy store, and the store holds
/// what it held before.
pub async fn validate_passes_and_leaves_nothing_written(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let Some(admin) = admin(&s).await else { return };
    let id = s.add(new_task("a")).await;
    let before = s.all_tasks().await;
    let mut options = ValidateOptions::new(true);
    options.benchmark = false;
    let report = admin.validate(&options).await;
    let numbers: Vec<u8> = report.checks.iter().map(|c| c.number).collect();
    assert_eq!(numbers, [2, 3, 4, 5, 6, 7, 8], "{report:#?}");
    assert!(
        report.checks.iter().all(|c| c.outcome != Outcome::Fail),
        "{report:#?}"
    );
    assert_eq!(s.all_tasks().await, before);
    assert_eq!(s.task(id).await.id, id);
}
