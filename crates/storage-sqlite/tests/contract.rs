//! The testkit's contract suite, run against the SQLite adapter on real files (schema
//! administration, upkeep, dump and load included).

use std::sync::Arc;

use prismq_storage_sqlite::admin::SqliteAdmin;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::contract::{ContractEnv, PruneScope, Subject, UpkeepAnswers};

fn sqlite(env: ContractEnv) -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SqliteOptions::new(dir.path().join("queue.db"));
    options.retry = env.retry;
    let admin = SqliteAdmin::new(options.clone(), env.clock.clone());
    let store = SqliteStore::open(options, env.clock).expect("open store");
    let admin = Arc::new(admin);
    Subject::from_store(store.clone())
        .with_admin(admin.clone())
        .with_upkeep(
            admin,
            UpkeepAnswers {
                prune: PruneScope::Everything,
                files: true,
            },
        )
        .with_dump(Arc::new(store.clone()), Arc::new(store))
        .with_guard(dir)
}

prismq_testkit::contract_suite!(sqlite);
