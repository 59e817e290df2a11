# shellcheck shell=bash
# A throwaway PostgreSQL server for the tests. SOURCE this file (scripts/check.sh does):
#
#     source scripts/services/postgres.sh
#
# It installs the server from the system's packages when it is absent, initdb's a cluster
# into a temporary directory (as the `postgres` system user when run as root: the server
# refuses to run as root), starts it on 127.0.0.1 at a free port and on a unix socket in that
# directory, creates the database `prismq_test`, and exports:
#
#   PRISMQ_TEST_POSTGRES_URL     postgres://prismq@127.0.0.1:PORT/prismq_test
#   PRISMQ_TEST_POSTGRES_CTL     a script taking start | stop | status (pg_ctl with the
#                                same options, run as the right user), for restart tests
#   PRISMQ_TEST_POSTGRES_BIN     the server's bin directory (pg_ctl, postgres, …)
#   PRISMQ_TEST_POSTGRES_DATA    the data directory
#   PRISMQ_TEST_POSTGRES_SOCKET  the unix socket directory
#   PRISMQ_TEST_POSTGRES_PORT    the TCP port
#   PRISMQ_TEST_POSTGRES_TLS     a directory with ca.crt (the test CA), and client.crt and
#                                client.key (role prismq_cert's certificate)
#
# The server speaks TLS (ssl=on) with a certificate for DNS:localhost only, signed by a CA
# made here with openssl, so tests can check verify-full, verify-ca and a wrong host name.
# Role prismq_cert may only log in over TLS with a client certificate (pg_hba `cert`).
#
# A trap on EXIT stops the server and removes the directory. Sourcing it again while its
# server answers does nothing. When the server cannot be installed or started, it returns
# non-zero, which fails check.sh (set -e): the PostgreSQL tests are never silently skipped.

_prismq_pg_fail() {
    printf 'postgres.sh: %s\n' "$*" >&2
    return 1
}

_prismq_pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
        printf '%s\n' "$d"
        return 0
    fi
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

_prismq_pg_install() {
    if [ "$(id -u)" -ne 0 ]; then
        _prismq_pg_fail "the PostgreSQL server is not installed and this is not root; install it (apt-get install postgresql) and source this script again"
        return 1
    fi
    echo "postgres.sh: installing the PostgreSQL server from the system's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q postgresql >/dev/null; then
        apt-get update -q >/dev/null || true
        apt-get install -y -q postgresql >/dev/null || {
            _prismq_pg_fail "apt-get install postgresql failed"
            return 1
        }
    fi
}

_prismq_pg_free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + (RANDOM % 20000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

# A CA, a server certificate for DNS:localhost and a client certificate for prismq_cert,
# into $1 (EC P-256 keys: quick to make).
_prismq_pg_certs() {
    local d=$1
    if ! command -v openssl >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl >/dev/null || true
        fi
        command -v openssl >/dev/null 2>&1 || {
            _prismq_pg_fail "openssl is needed to make the test server's TLS certificates; install it (apt-get install openssl)"
            return 1
        }
    fi
    mkdir -p "$d" && (
        set -e
        cd "$d"
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${ec[@]}" -days 3 -subj "/CN=PrismQ test CA" -keyout ca.key -out ca.crt \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req "${ec[@]}" -subj "/CN=localhost" -keyout server.key -out server.csr
        printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -extfile server.ext -out server.crt
        openssl req "${ec[@]}" -subj "/CN=prismq_cert" -keyout client.key -out client.csr
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -extfile client.ext -out client.crt
        rm -f ./*.csr ./*.ext ca.srl
        chmod 600 ./*.key
    ) >"$d/openssl.log" 2>&1 || {
        cat "$d/openssl.log" >&2
        _prismq_pg_fail "openssl could not make the test certificates (log above)"
        return 1
    }
}

_prismq_pg_cleanup() {
    if [ -n "${_PRISMQ_PG_DIR:-}" ] && [ -d "$_PRISMQ_PG_DIR" ]; then
        "$_PRISMQ_PG_DIR/ctl.sh" stop >/dev/null 2>&1 || true
        rm -rf "$_PRISMQ_PG_DIR"
    fi
    unset _PRISMQ_PG_DIR PRISMQ_TEST_POSTGRES_URL PRISMQ_TEST_POSTGRES_CTL PRISMQ_TEST_POSTGRES_TLS
}

_prismq_pg_start() {
    # Already running (sourced twice): keep it.
    if [ -n "${_PRISMQ_PG_DIR:-}" ] && [ -n "${PRISMQ_TEST_POSTGRES_CTL:-}" ] &&
        "$PRISMQ_TEST_POSTGRES_CTL" status >/dev/null 2>&1; then
        echo "postgres.sh: already running at $PRISMQ_TEST_POSTGRES_URL" >&2
        return 0
    fi

    local bin
    if ! bin=$(_prismq_pg_bindir); then
        _prismq_pg_install || return 1
        bin=$(_prismq_pg_bindir) || {
            _prismq_pg_fail "PostgreSQL was installed but pg_ctl/initdb were not found"
            return 1
        }
    fi

    local dir port run_as=""
    dir=$(mktemp -d "${TMPDIR:-/tmp}/prismq-pg.XXXXXX") || return 1
    chmod 755 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || {
            rm -rf "$dir"
            _prismq_pg_fail "running as root but there is no postgres system user to run the server as"
            return 1
        }
        chown postgres: "$dir"
        run_as=postgres
    fi
    port=$(_prismq_pg_free_port) || {
        rm -rf "$dir"
        _prismq_pg_fail "no free TCP port found on 127.0.0.1"
        return 1
    }

    _prismq_pg_certs "$dir/tls" || {
        rm -rf "$dir"
        return 1
    }
    if [ -n "$run_as" ]; then
        chown "$run_as:" "$dir/tls/server.key"
    fi

    # The control script: the same pg_ctl invocation for this script and for restart tests.
    cat >"$dir/ctl.sh" <<EOF
#!/usr/bin/env bash
# Controls the throwaway PostgreSQL in $dir: start | stop | status.
set -euo pipefail
run() {
    if [ -n "$run_as" ] && [ "\$(id -u)" -eq 0 ]; then
        runuser -u "$run_as" -- "\$@"
    else
        "\$@"
    fi
}
case "\${1:-}" in
    start) run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \\
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key -c ssl_ca_file=$dir/tls/ca.crt" start ;;
    stop) run "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop ;;
    status) run "$bin/pg_ctl" -D "$dir/data" status ;;
    *) echo "usage: \$0 start|stop|status" >&2; exit 2 ;;
esac
EOF
    chmod 755 "$dir/ctl.sh"

    local init=("$bin/initdb" -D "$dir/data" -U prismq -A trust -E UTF8 --locale=C --no-sync)
    if [ -n "$run_as" ]; then
        init=(runuser -u "$run_as" -- "${init[@]}")
    fi
    if ! "${init[@]}" >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        _prismq_pg_fail "initdb failed (see above)"
        return 1
    fi

    # prismq_cert logs in only over TLS with a client certificate; everyone else as before.
    {
        printf 'hostssl all prismq_cert 127.0.0.1/32 cert\nhostssl all prismq_cert ::1/128 cert\nhost all prismq_cert all reject\n'
        cat "$dir/data/pg_hba.conf"
    } >"$dir/pg_hba.new" && cat "$dir/pg_hba.new" >"$dir/data/pg_hba.conf" && rm -f "$dir/pg_hba.new"

    _PRISMQ_PG_DIR=$dir
    # Stop the server and remove its directory when the sourcing shell exits, keeping any
    # EXIT trap that was already set.
    local previous=""
    eval "set -- $(trap -p EXIT)"
    previous=${3:-}
    # shellcheck disable=SC2064
    trap "_prismq_pg_cleanup${previous:+; $previous}" EXIT

    if ! "$dir/ctl.sh" start >"$dir/start.log" 2>&1; then
        cat "$dir/start.log" "$dir/server.log" >&2 2>/dev/null || true
        _prismq_pg_cleanup
        _prismq_pg_fail "the server did not start (log above)"
        return 1
    fi
    if ! "$bin/psql" -q -h "$dir" -p "$port" -U prismq -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE prismq_test" -c "CREATE ROLE prismq_cert LOGIN" \
        -c "GRANT ALL ON DATABASE prismq_test TO prismq_cert" >/dev/null; then
        _prismq_pg_cleanup
        _prismq_pg_fail "could not create the test database"
        return 1
    fi

    export PRISMQ_TEST_POSTGRES_URL="postgres://prismq@127.0.0.1:$port/prismq_test"
    export PRISMQ_TEST_POSTGRES_CTL="$dir/ctl.sh"
    export PRISMQ_TEST_POSTGRES_BIN="$bin"
    export PRISMQ_TEST_POSTGRES_DATA="$dir/data"
    export PRISMQ_TEST_POSTGRES_SOCKET="$dir"
    export PRISMQ_TEST_POSTGRES_PORT="$port"
    export PRISMQ_TEST_POSTGRES_TLS="$dir/tls"
    echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $PRISMQ_TEST_POSTGRES_URL (socket in $dir)" >&2
}

_prismq_pg_start
