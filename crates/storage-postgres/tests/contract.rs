//! The testkit's contract suite against a real PostgreSQL server (the URL comes from
//! `source scripts/services/postgres.sh`); each test runs in its own fresh schema (schema
//! administration, upkeep (sightings prune only), dump and load included).

mod common;

use std::sync::Arc;

use prismq_storage_postgres::PostgresStore;
use prismq_testkit::contract::{ContractEnv, PruneScope, Subject, UpkeepAnswers};

fn postgres(env: ContractEnv) -> Subject {
    let mut options = common::options("c");
    options.retry = env.retry;
    let store = PostgresStore::connect_lazy(options, env.clock).expect("build store");
    Subject::from_store(store.clone())
        .with_admin(Arc::new(store.clone()))
        .with_upkeep(
            Arc::new(store.clone()),
            UpkeepAnswers {
                prune: PruneScope::SightingsOnly,
                files: false,
            },
        )
        .with_dump(Arc::new(store.clone()), Arc::new(store))
}

prismq_testkit::contract_suite!(postgres);
