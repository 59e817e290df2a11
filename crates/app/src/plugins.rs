//! The plugin list: every source the app registers. Adding a plugin crate is one line here
//! (and its dependency in `crates/app/Cargo.toml`); see `docs/plugin-guide.md`.

use prismq_domain::Plugin;

/// Every plugin the app loads configuration for and registers, in order.
pub static PLUGINS: &[&dyn Plugin] = &[&prismq_plugins::PLUGIN, &prismq_example_plugin::PLUGIN];

/// Asks every plugin to stop what would outlive an immediate exit (external tools in their
/// own process groups): called before `std::process::exit` on a second Ctrl-C.
pub fn abort_all() {
    for p in PLUGINS {
        p.abort();
    }
}
