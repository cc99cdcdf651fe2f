#!/bin/sh
# Creates the cluster on the first start, as the official image's entrypoint does, then
# runs the command: `postgres` (the server, in the foreground) or anything else.
set -eu

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    # The password goes through a pipe, never into a file or the process list.
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" |
        initdb --pgdata="$PGDATA" --username="$user" --pwfile=/dev/stdin \
            --auth-local=trust --auth-host=scram-sha-256 \
            --no-locale --encoding=UTF8 --no-sync >/dev/null
    # Reachable from the other containers, with a password; TCP only, so that no socket
    # directory has to be writable.
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "listen_addresses = '*'\nunix_socket_directories = ''\njit = off\n" \
        >>"$PGDATA/postgresql.conf"
    database=${POSTGRES_DB:-$user}
    if [ "$database" != postgres ]; then
        printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$database" "$user" |
            postgres --single --config-file="$PGDATA/postgresql.conf" -D "$PGDATA" postgres >/dev/null
    fi
fi

exec "$@"
