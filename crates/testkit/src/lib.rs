//! PrismQ's testkit: an in-memory implementation of every storage port ([`MemoryStore`]),
//! a fake clock ([`FakeClock`]), fixtures, and the contract suite every storage adapter
//! must pass ([`contract`], stamped out per adapter with [`contract_suite!`]).

pub mod clock;
pub mod contract;
pub mod fixtures;
pub mod handler;
pub mod memory;
pub mod tls;

pub use clock::FakeClock;
pub use memory::MemoryStore;
