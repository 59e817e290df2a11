# shellcheck shell=bash
# A real yt-dlp for the test of our yt-dlp arguments. SOURCE this file (scripts/check.sh
# does):
#
#     source scripts/services/ytdlp.sh
#
# When `yt-dlp --version` fails it installs yt-dlp with the Python package manager
# (`python3 -m pip install --quiet yt-dlp`), then exports:
#
#   PRISMQ_TEST_YTDLP    the path of the yt-dlp program
#
# Sourcing it again does nothing more than find the program. The test that uses it
# (crates/plugins/tests/ytdlp_real.rs) checks only yt-dlp's option parser and needs no
# network. When yt-dlp cannot be installed or run, this returns non-zero, which fails
# check.sh (set -e): the test is never silently skipped.

_prismq_ytdlp_fail() {
    printf 'ytdlp.sh: %s\n' "$*" >&2
    return 1
}

_prismq_ytdlp_setup() {
    if ! yt-dlp --version >/dev/null 2>&1; then
        command -v python3 >/dev/null 2>&1 ||
            { _prismq_ytdlp_fail "python3 is needed to install yt-dlp"; return 1; }
        python3 -m pip install --quiet yt-dlp ||
            { _prismq_ytdlp_fail "python3 -m pip install yt-dlp failed"; return 1; }
        hash -r
    fi
    local path version
    path=$(command -v yt-dlp) ||
        { _prismq_ytdlp_fail "yt-dlp was installed but is not on the PATH ($PATH)"; return 1; }
    version=$("$path" --version 2>&1) ||
        { _prismq_ytdlp_fail "$path --version failed: $version"; return 1; }
    export PRISMQ_TEST_YTDLP="$path"
    printf 'yt-dlp %s at %s\n' "$version" "$path"
}

_prismq_ytdlp_setup
