#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test, and the docs build.
# README's test command and CI's entry point (.ci/run) both run this script.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Services the tests need, started idempotently by the project's own scripts.
for setup in scripts/services/*.sh; do
    [ -e "$setup" ] || continue
    step "service: $setup"
    # shellcheck source=/dev/null
    source "$setup"
done

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked --no-fail-fast

step "cargo doc --workspace --no-deps (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "all checks passed"
