//! Runs the whole contract suite against the in-memory `MemoryStore`: its schema
//! administration (no schema, always current), its upkeep (none: "not supported") and its
//! dump and load included.

use std::sync::Arc;

use prismq_testkit::contract::{ContractEnv, PruneScope, Subject, UpkeepAnswers};
use prismq_testkit::MemoryStore;

prismq_testkit::contract_suite!(|env: ContractEnv| {
    let store = MemoryStore::new(env.clock, env.retry);
    Subject::from_store(store.clone())
        .with_schemaless_admin(Arc::new(store.clone()))
        .with_upkeep(
            Arc::new(store.clone()),
            UpkeepAnswers {
                prune: PruneScope::Nothing,
                files: false,
            },
        )
        .with_dump(Arc::new(store.clone()), Arc::new(store))
});
