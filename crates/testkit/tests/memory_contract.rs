//! Runs the whole contract suite against the in-memory `MemoryStore`.

use prismq_testkit::contract::{ContractEnv, Subject};
use prismq_testkit::MemoryStore;

prismq_testkit::contract_suite!(|env: ContractEnv| {
    Subject::from_store(MemoryStore::new(env.clock, env.retry))
});
