//! The testkit's contract suite, run against the SQLite adapter on real files.

use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::contract::{ContractEnv, Subject};

fn sqlite(env: ContractEnv) -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SqliteOptions::new(dir.path().join("queue.db"));
    options.retry = env.retry;
    let store = SqliteStore::open(options, env.clock).expect("open store");
    Subject::from_store(store).with_guard(dir)
}

prismq_testkit::contract_suite!(sqlite);
