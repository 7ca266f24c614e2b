# Shared by scripts/cluster-up, cluster-restart-node and cluster-down (sourced,
# not run): where things are, and how a node starts and stops.

PGBIN=/usr/lib/postgresql/15/bin
ROOT=$(cd "$(dirname "$0")/.." && pwd)
THAW=${THAW:-$ROOT/build/thaw}
PY=/usr/bin/python3

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# as_pg CMD...: PostgreSQL refuses to run as root; root runs it as `postgres`
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# set_env KEY VALUE: KEY=VALUE in DIR/cluster.env, replaced if present; a
# value with characters a shell reads specially ('&' in a URL) is quoted
set_env() {
    local f="$DIR/cluster.env" v=$2
    case "$v" in
    *[!A-Za-z0-9_./:@,=+-]*) v="'$v'" ;;
    esac
    touch "$f"
    grep -v "^$1=" "$f" >"$f.new" || true
    echo "$1=$v" >>"$f.new"
    mv "$f.new" "$f"
}

# get_env KEY: its value in DIR/cluster.env (unquoted)
get_env() {
    grep "^$1=" "$DIR/cluster.env" 2>/dev/null | cut -d= -f2- | sed "s/^'\(.*\)'$/\1/"
}

# wait_http URL SECONDS [PID]: until URL answers 200; fails early when PID died
wait_http() {
    local url=$1 left=$(($2 * 10)) pid=${3:-}
    while [ "$left" -gt 0 ]; do
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
        left=$((left - 1))
    done
    return 1
}

# start_node N: starts node N as DIR/nN/cmd says, with the THAW_* variables
# cluster-up saw (DIR/node.env); sets NODEn_PID in cluster.env
start_node() {
    local n=$1 pid
    # shellcheck disable=SC1091
    (
        set -a
        . "$DIR/node.env"
        set +a
        # its own session: the whole node (zygotes, instances) is one group
        exec setsid "$THAW" serve $(cat "$DIR/n$n/cmd") >>"$DIR/n$n/log" 2>&1 </dev/null
    ) &
    pid=$!
    set_env "NODE${n}_PID" "$pid"
    eval "NODE${n}_PID=$pid"
}

# wait_node N: until node N's /readyz says ready (60 s)
wait_node() {
    local n=$1 admin pid
    admin=$(get_env "ADMIN$n")
    pid=$(get_env "NODE${n}_PID")
    if ! wait_http "$admin/readyz" 60 "$pid"; then
        tail -n 30 "$DIR/n$n/log" >&2
        die "node $n did not become ready (its log: $DIR/n$n/log)"
    fi
}

# stop_pid PID...: TERM to each, then after 3 s KILL to what is left and
# its whole process group (a node's session: zygotes, instances)
stop_pid() {
    local pid i alive
    # (no `a && b` here: under set -e a dead pid's failed kill would end
    # the caller)
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for i in $(seq 30); do
        alive=0
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then
                alive=1
            fi
        done
        if [ "$alive" = 0 ]; then
            break
        fi
        sleep 0.1
    done
    for pid in "$@"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    done
    return 0
}

# wait_haproxy_up N: until HAProxy's stats show node N's server UP (30 s)
wait_haproxy_up() {
    local n=$1 stats i
    stats=$(get_env STATS)
    for i in $(seq 300); do
        if curl -fsS --max-time 2 "http://$stats/;csv" 2>/dev/null |
            awk -F, -v s="n$n" '$1 == "thaw_nodes" && $2 == s { print $18 }' | grep -q '^UP'; then
            return 0
        fi
        sleep 0.1
    done
    die "HAProxy does not see node $n up (its config: $DIR/haproxy.cfg)"
}
