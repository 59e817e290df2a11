//! PrismQ's HTTP adapter.
