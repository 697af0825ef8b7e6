# shellcheck shell=bash disable=SC2034,SC2153
# bench/peers/nchan-common.sh: start and stop nginx + nchan (sourced).
#
# Runs Debian's nginx (apt-get install nginx-light libnginx-mod-nchan) with
# bench/peers/nchan.conf in a private prefix directory: never the system
# service. The caller defines log() and sets NCHAN_DIR (an empty scratch
# directory); nchan_start sets NCHAN_PID (the master) and NCHAN_PORT.
# nchan_stop ends the master and its workers by PID, bounded. Nothing here
# kills anything by name.

NCHAN_CONF_SRC=${NCHAN_CONF_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/nchan.conf}
NCHAN_NGINX=${NCHAN_NGINX:-/usr/sbin/nginx}
NCHAN_PID=""
NCHAN_PORT=""

# A free loopback port (bound, read, released: another process could take it
# before nginx does, so nchan_start retries).
nchan_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Checks that nginx and the nchan module are installed.
nchan_check_installed() {
    if [ ! -x "$NCHAN_NGINX" ] || [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        log "nginx + nchan not installed: apt-get install -y nginx-light libnginx-mod-nchan"
        return 1
    fi
}

# The master's children (the workers), one PID a line.
nchan_workers() {
    [ -n "$NCHAN_PID" ] || return 0
    { ps --ppid "$NCHAN_PID" -o pid= 2>/dev/null || true; } | tr -d ' '
}

# nchan_start: nginx -p NCHAN_DIR -c NCHAN_DIR/nchan.conf, in the foreground
# (daemon off), its master's PID from NCHAN_DIR/master.pid (written by the
# process itself, which then execs nginx). Waits (at most 10 s) until the port
# answers and both workers run. Retries a taken port up to 5 times.
nchan_start() {
    local try i port nw
    nchan_check_installed || return 1
    mkdir -p "$NCHAN_DIR/tmp"
    # A copy next to listen.conf: nginx resolves "include" against the
    # directory of the -c file.
    cp "$NCHAN_CONF_SRC" "$NCHAN_DIR/nchan.conf"
    for ((try = 1; try <= 5; try++)); do
        port=$(nchan_free_port)
        echo "listen 127.0.0.1:$port;" >"$NCHAN_DIR/listen.conf"
        : >"$NCHAN_DIR/error.log"
        # The master's PID from a file it writes itself before exec'ing
        # nginx (never $!, which can be a wrapper shell's); this shell's
        # child all the same, so `wait` reaps it.
        rm -f "$NCHAN_DIR/master.pid"
        bash -c 'echo $$ >"$0"; exec "$@"' "$NCHAN_DIR/master.pid" \
            "$NCHAN_NGINX" -p "$NCHAN_DIR/" -c "$NCHAN_DIR/nchan.conf" -e "$NCHAN_DIR/error.log" \
            -g 'daemon off;' >"$NCHAN_DIR/stdout.log" 2>&1 &
        NCHAN_PID=""
        for ((i = 0; i < 50; i++)); do
            [ -s "$NCHAN_DIR/master.pid" ] && { NCHAN_PID=$(cat "$NCHAN_DIR/master.pid"); break; }
            sleep 0.1
        done
        [ -n "$NCHAN_PID" ] || { log "nginx: no PID file $NCHAN_DIR/master.pid within 5 s"; return 1; }
        for ((i = 0; i < 100; i++)); do
            if ! kill -0 "$NCHAN_PID" 2>/dev/null; then
                wait "$NCHAN_PID" 2>/dev/null || true
                NCHAN_PID=""
                break
            fi
            nw=$(nchan_workers | wc -l)
            if [ "$nw" -ge 2 ] &&
                [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/")" = 404 ]; then
                NCHAN_PORT=$port
                log "nginx+nchan master pid $NCHAN_PID, workers $(nchan_workers | tr '\n' ' ')on 127.0.0.1:$port ($NCHAN_DIR)"
                return 0
            fi
            sleep 0.1
        done
        if [ -n "$NCHAN_PID" ]; then
            log "nginx did not answer on 127.0.0.1:$port within 10 s"
            nchan_stop
            cat "$NCHAN_DIR/error.log" "$NCHAN_DIR/stdout.log" >&2
            return 1
        fi
        if grep -q 'Address already in use' "$NCHAN_DIR/error.log" "$NCHAN_DIR/stdout.log"; then
            log "port $port was taken meanwhile; another one (try $try/5)"
            continue
        fi
        log "nginx exited at start:"
        cat "$NCHAN_DIR/error.log" "$NCHAN_DIR/stdout.log" >&2
        return 1
    done
    return 1
}

nchan_alive() { [ -n "$NCHAN_PID" ] && kill -0 "$NCHAN_PID" 2>/dev/null; }

# Stops the master (SIGTERM: fast shutdown; its workers exit with it); after
# 15 s, SIGKILL to the master and to the workers it had, by PID.
nchan_stop() {
    local i workers
    [ -n "$NCHAN_PID" ] || return 0
    workers=$(nchan_workers)
    kill -TERM "$NCHAN_PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$NCHAN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$NCHAN_PID" 2>/dev/null; then
        log "nginx master $NCHAN_PID did not stop within 15 s of SIGTERM: SIGKILL"
        kill -KILL "$NCHAN_PID" 2>/dev/null || true
    fi
    wait "$NCHAN_PID" 2>/dev/null || true
    for w in $workers; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$w" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$w" 2>/dev/null; then
            log "nginx worker $w still there 5 s after its master: SIGKILL"
            kill -KILL "$w" 2>/dev/null || true
        fi
    done
    NCHAN_PID=""
}
