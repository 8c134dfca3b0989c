#!/usr/bin/env bash
# RabbitMQ and PostgreSQL for a production-style AiiDA profile (core.psql_dos + core.rabbitmq), from Debian's
# packages, on a machine without systemd or sudo. Idempotent: what is installed or running is left as it is.
#
#   bash scripts/setup_services.sh [start]   install what is missing, start both, create the role (default)
#   bash scripts/setup_services.sh stop      stop both
#   bash scripts/setup_services.sh status    say what runs (exit 1 if a service is down)
#   bash scripts/setup_services.sh env       print the connection settings as shell variables
#
# PostgreSQL: a role MATEMBED_PG_USER (password MATEMBED_PG_PASSWORD, may create databases) on 127.0.0.1:5432.
# Databases are created by whoever needs one, with the C.UTF-8 locale (en_US.UTF-8 does not exist here):
#   CREATE DATABASE name OWNER role TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'
# RabbitMQ: guest/guest on 127.0.0.1:5672, consumer_timeout switched off (AiiDA tasks may stay unacknowledged
# for longer than RabbitMQ's default 30 minutes while a process runs).
set -euo pipefail

ACTION=${1:-start}
PG_USER=${MATEMBED_PG_USER:-aiida_matembed}
PG_PASSWORD=${MATEMBED_PG_PASSWORD:-aiida_matembed}
PG_HOST=127.0.0.1
PG_PORT=5432
TIMEOUT=${MATEMBED_SERVICE_TIMEOUT:-120}

log() { echo "[setup_services] $*"; }
die() { echo "[setup_services] ERROR: $*" >&2; exit 1; }

as_postgres() {
    # run a command as the postgres system user (no sudo here: runuser as root, or directly if we are postgres)
    if [ "$(id -un)" = postgres ]; then
        "$@"
    elif [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        die "creating the PostgreSQL role needs root or the postgres user (run this script as root once)"
    fi
}

apt_install() {
    [ "$(id -u)" = 0 ] || die "installing $* needs root: run 'apt-get install -y $*' as root, then this script again"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "$@" >/tmp/matembed_apt.log 2>&1; then
        apt-get update -q >>/tmp/matembed_apt.log 2>&1 || true
        apt-get install -y -q --no-install-recommends "$@" >>/tmp/matembed_apt.log 2>&1 \
            || { tail -20 /tmp/matembed_apt.log >&2; die "apt-get install $* failed (log: /tmp/matembed_apt.log)"; }
    fi
}

wait_for() {
    # wait_for DESCRIPTION COMMAND...: poll COMMAND every second until it succeeds or TIMEOUT seconds pass
    local what=$1 start=$SECONDS
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS - start > TIMEOUT)); then
            die "$what did not come up within ${TIMEOUT} s"
        fi
        sleep 1
    done
}

# ------------------------------------------------------------------------------------------------ RabbitMQ
rabbitmq_running() { command -v rabbitmqctl >/dev/null && rabbitmqctl -q status >/dev/null 2>&1; }

start_rabbitmq() {
    if ! command -v rabbitmq-server >/dev/null; then
        log 'installing rabbitmq-server (Debian package)'
        apt_install rabbitmq-server
    fi
    if rabbitmq_running; then
        log 'RabbitMQ is running'
    else
        log 'starting RabbitMQ (rabbitmq-server -detached)'
        rabbitmq-server -detached >/dev/null 2>&1 || true
        wait_for 'RabbitMQ' rabbitmqctl -q await_startup
    fi
    # the AMQP application may be stopped (rabbitmqctl stop_app) while the node runs
    if ! rabbitmqctl -q eval 'rabbit:is_running().' 2>/dev/null | grep -q true; then
        rabbitmqctl -q start_app
    fi
    rabbitmqctl -q eval 'application:set_env(rabbit, consumer_timeout, undefined).' >/dev/null
}

stop_rabbitmq() {
    if rabbitmq_running; then
        log 'stopping RabbitMQ'
        rabbitmqctl -q shutdown >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------------------------------------- PostgreSQL
pg_cluster() {
    # "VERSION NAME" of the first cluster, empty if none
    command -v pg_lsclusters >/dev/null || return 0
    pg_lsclusters -h 2>/dev/null | awk 'NR == 1 {print $1, $2}'
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

start_postgres() {
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_cluster)" ]; then
        log 'installing postgresql (Debian package)'
        apt_install postgresql postgresql-client
    fi
    local cluster
    cluster=$(pg_cluster)
    [ -n "$cluster" ] || die 'no PostgreSQL cluster found after installing postgresql (pg_lsclusters is empty)'
    # shellcheck disable=SC2086
    if pg_ready; then
        log "PostgreSQL $cluster is running"
    else
        log "starting PostgreSQL $cluster (pg_ctlcluster $cluster start)"
        # shellcheck disable=SC2086
        pg_ctlcluster $cluster start || true
        wait_for 'PostgreSQL' pg_ready
    fi
    if ! PGPASSWORD=$PG_PASSWORD psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc 'SELECT 1' \
        >/dev/null 2>&1; then
        log "creating the PostgreSQL role $PG_USER (CREATEDB)"
        as_postgres psql -q -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 -c \
            "DO \$\$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
                 CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
               ELSE
                 ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
               END IF;
             END \$\$;"
    fi
}

stop_postgres() {
    local cluster
    cluster=$(pg_cluster)
    if [ -n "$cluster" ] && pg_ready; then
        log "stopping PostgreSQL $cluster"
        # shellcheck disable=SC2086
        pg_ctlcluster $cluster stop || true
    fi
}

status() {
    local rc=0
    if rabbitmq_running && rabbitmqctl -q eval 'rabbit:is_running().' 2>/dev/null | grep -q true; then
        echo 'RabbitMQ: running (127.0.0.1:5672)'
    else
        echo 'RabbitMQ: down (start: bash scripts/setup_services.sh start)'
        rc=1
    fi
    if command -v pg_isready >/dev/null && pg_ready; then
        echo "PostgreSQL: running ($PG_HOST:$PG_PORT, cluster $(pg_cluster))"
    else
        echo 'PostgreSQL: down (start: bash scripts/setup_services.sh start)'
        rc=1
    fi
    return $rc
}

case "$ACTION" in
    start)
        start_rabbitmq
        start_postgres
        log "ready: RabbitMQ 127.0.0.1:5672, PostgreSQL $PG_HOST:$PG_PORT (role $PG_USER)"
        ;;
    stop)
        stop_rabbitmq
        stop_postgres
        ;;
    status) status ;;
    env)
        echo "MATEMBED_PG_USER=$PG_USER"
        echo "MATEMBED_PG_PASSWORD=$PG_PASSWORD"
        echo "MATEMBED_PG_HOST=$PG_HOST"
        echo "MATEMBED_PG_PORT=$PG_PORT"
        ;;
    *) die "unknown action '$ACTION' (start, stop, status, env)" ;;
esac
