# shellcheck shell=bash
# Headless Chromium and its WebDriver for the dashboard's browser tests
# (crates/server/tests/web). SOURCE this file (scripts/check.sh does):
#
#     source scripts/services/chromium.sh
#
# When /usr/bin/chromium or /usr/bin/chromedriver is missing it installs Debian's
# `chromium` and `chromium-driver` with apt-get (quietly; `apt-get update` first), then
# exports:
#
#   PRISMQ_TEST_CHROMIUM       the browser (/usr/bin/chromium)
#   PRISMQ_TEST_CHROMEDRIVER   its WebDriver server (/usr/bin/chromedriver)
#
# Sourcing it again only checks the two programs. The tests start chromedriver themselves
# on a free loopback port and the browser headless, with a fresh profile and no network
# services of its own. When they cannot be installed or run, this returns non-zero, which
# fails check.sh (set -e): the browser tests are never silently skipped.

_prismq_chromium_fail() {
    printf 'chromium.sh: %s\n' "$*" >&2
    return 1
}

_prismq_chromium_setup() {
    local browser=/usr/bin/chromium driver=/usr/bin/chromedriver
    if [ ! -x "$browser" ] || [ ! -x "$driver" ]; then
        command -v apt-get >/dev/null 2>&1 ||
            { _prismq_chromium_fail "apt-get is needed to install chromium and chromium-driver"; return 1; }
        local sudo="" log
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        log=$(mktemp)
        if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            rm -f "$log"
            _prismq_chromium_fail "apt-get update failed"
            return 1
        fi
        if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            chromium chromium-driver >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            rm -f "$log"
            _prismq_chromium_fail "apt-get install chromium chromium-driver failed"
            return 1
        fi
        rm -f "$log"
    fi
    local version
    version=$("$driver" --version 2>&1) ||
        { _prismq_chromium_fail "$driver --version failed: $version"; return 1; }
    "$browser" --version >/dev/null 2>&1 ||
        { _prismq_chromium_fail "$browser --version failed"; return 1; }
    export PRISMQ_TEST_CHROMIUM="$browser"
    export PRISMQ_TEST_CHROMEDRIVER="$driver"
    printf '%s\n' "$version"
}

_prismq_chromium_setup
