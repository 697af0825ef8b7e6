# shellcheck shell=bash disable=SC2034
# bench/peers/peer-common.sh: start and stop one of ringcast's peers for
# bench/run (sourced after bench/sse-common.sh, which defines log).
#
#   peer_start PEER DIR   starts PEER (nchan, node-ws) on a free loopback port,
#                         its files in the empty scratch directory DIR; sets
#                         PEER_PID (the process ringload's --server-pid gets and
#                         the root of the process tree that is measured),
#                         PEER_PORT, PEER_LOG (its log), PEER_COMMAND, PEER_VERSION
#   peer_alive            0 while it runs
#   peer_stop             stops it by PID (SIGTERM, SIGKILL after a bound)
#
# nchan: nginx + libnginx-mod-nchan from Debian, bench/peers/nchan.conf, 2
# worker processes (bench/peers/nchan-common.sh). node-ws: node
# bench/peers/node-ws/server.js, one process. PIDs always come from a file the
# process wrote itself (`bash -c 'echo $$ >F; exec ...'`); nothing is ended
# by name.

# shellcheck source=bench/peers/nchan-common.sh
source "$ROOT/bench/peers/nchan-common.sh"

PEER_NAME=""
PEER_PID=""
PEER_PORT=""
PEER_LOG=""
PEER_COMMAND=""
PEER_VERSION=""
NODEWS_PID=""
NODE=${NODE:-/usr/bin/node}

peer_check_installed() {
    case $1 in
    nchan) nchan_check_installed ;;
    node-ws)
        if [ ! -x "$NODE" ] || { [ ! -d /usr/share/nodejs/ws ] && ! "$NODE" -e "require('ws')" 2>/dev/null; }; then
            log "node + ws not installed: apt-get install -y nodejs node-ws"
            return 1
        fi
        ;;
    *) log "unknown peer $1 (nchan, node-ws)"; return 1 ;;
    esac
}

nodews_start() {
    local dir=$1 i
    rm -f "$dir/node.pid"
    bash -c 'echo $$ >"$0"; exec "$@"' "$dir/node.pid" \
        "$NODE" "$ROOT/bench/peers/node-ws/server.js" --port 0 --bind 127.0.0.1 \
        >"$dir/stdout.log" 2>"$dir/server.err" &
    for ((i = 0; i < 50; i++)); do
        [ -s "$dir/node.pid" ] && { NODEWS_PID=$(cat "$dir/node.pid"); break; }
        sleep 0.1
    done
    [ -n "$NODEWS_PID" ] || { log "node-ws: no PID file within 5 s"; return 1; }
    for ((i = 0; i < 100; i++)); do
        PEER_PORT=$(grep -o 'listening on [0-9.]*:[0-9]*' "$dir/server.err" 2>/dev/null | head -1 | sed 's/.*://') || true
        [ -n "$PEER_PORT" ] && return 0
        kill -0 "$NODEWS_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "node-ws (pid $NODEWS_PID) did not print 'listening on' within 10 s:"
    cat "$dir/server.err" >&2
    nodews_stop
    return 1
}

nodews_stop() {
    [ -n "$NODEWS_PID" ] || return 0
    stop_pid "$NODEWS_PID" node-ws 10
    NODEWS_PID=""
}

peer_start() {
    PEER_NAME=$1
    local dir=$2
    peer_check_installed "$PEER_NAME" || return 1
    case $PEER_NAME in
    nchan)
        NCHAN_DIR=$dir
        nchan_start || return 1
        PEER_PID=$NCHAN_PID
        PEER_PORT=$NCHAN_PORT
        PEER_LOG=$dir/error.log
        PEER_COMMAND="nginx -p DIR/ -c DIR/nchan.conf -g 'daemon off;' (bench/peers/nchan.conf, worker_processes 2)"
        PEER_VERSION="$("$NCHAN_NGINX" -v 2>&1 | sed 's/.*version: //'), libnginx-mod-nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')"
        ;;
    node-ws)
        nodews_start "$dir" || return 1
        PEER_PID=$NODEWS_PID
        PEER_LOG=$dir/server.err
        PEER_COMMAND="node bench/peers/node-ws/server.js --port 0 --bind 127.0.0.1 (1 process)"
        PEER_VERSION="node $("$NODE" --version), ws $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' /usr/share/nodejs/ws/package.json 2>/dev/null | head -1)"
        log "node-ws pid $PEER_PID on 127.0.0.1:$PEER_PORT"
        ;;
    esac
}

peer_alive() { [ -n "$PEER_PID" ] && kill -0 "$PEER_PID" 2>/dev/null; }

peer_stop() {
    case $PEER_NAME in
    nchan) nchan_stop ;;
    node-ws) nodews_stop ;;
    esac
    PEER_PID=""
}
