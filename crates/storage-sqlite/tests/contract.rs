//! The testkit's contract suite, run against the SQLite adapter on real files (schema
//! administration, dump and load included).

use std::sync::Arc;

use prismq_storage_sqlite::admin::SqliteAdmin;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::contract::{ContractEnv, Subject};

fn sqlite(env: ContractEnv) -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SqliteOptions::new(dir.path().join("queue.db"));
    options.retry = env.retry;
    let admin = SqliteAdmin::new(options.clone(), env.clock.clone());
    let store = SqliteStore::open(options, env.clock).expect("open store");
    Subject::from_store(store.clone())
        .with_admin(Arc::new(admin))
        .with_dump(Arc::new(store.clone()), Arc::new(store))
        .with_guard(dir)
}

prismq_testkit::contract_suite!(sqlite);
