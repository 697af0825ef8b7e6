# shellcheck shell=bash disable=SC2034
# bench/sse-common.sh: shared by bench/sse-idle-rss and bench/sse-latency (sourced).
#
# Starts ringcast on a free loopback port, remembers its PID, and stops
# everything this script started (by PID) on exit, also on failure.
# Every wait is bounded.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
PY=${PYTHON:-/usr/bin/python3}
CLIENT=$ROOT/build/bench/sse_client
WORK=$(mktemp -d /tmp/ringcast-bench.XXXXXX)
SERVER_PID=""
CLIENT_PID=""
PORT=""

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# Waits up to $2 seconds for PID $1 to exit; returns 0 if it did.
wait_exit() {
    local pid=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

stop_pid() { # pid, name, seconds before SIGKILL
    local pid=$1 name=$2 limit=${3:-15}
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" "$limit"; then
        log "$name (pid $pid) did not stop within ${limit}s of SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_exit "$pid" 5 || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_client() { stop_pid "$CLIENT_PID" sse_client 10; CLIENT_PID=""; }
stop_server() { stop_pid "$SERVER_PID" ringcast 15; SERVER_PID=""; }

cleanup() {
    local rc=$?
    stop_client
    stop_server
    if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then
        log "scratch files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Builds the client and the server under test (REV=, RINGCAST=: see bench/run-sse).
build_all() {
    bash "$ROOT/bench/run-sse" build
    RINGCAST=$(bash "$ROOT/bench/run-sse" server-path)
    SERVER_REV=${REV:+$(git rev-parse --short=12 "$REV^{commit}")}
    SERVER_REV=${SERVER_REV:-worktree}
    log "server under test: $RINGCAST ($SERVER_REV)"
}

# start_server ARGS... : ringcast on 127.0.0.1, port 0; sets SERVER_PID, PORT.
start_server() {
    local err i
    err=$WORK/server.$(date +%s%N).err
    # A private copy under another name: on this shared box a broad
    # `pkill ringcast` from someone else's cleanup must not end our run.
    [ -x "$WORK/rcbench-server" ] || cp "$RINGCAST" "$WORK/rcbench-server"
    "$WORK/rcbench-server" --port 0 --bind 127.0.0.1 "$@" 2>"$err" &
    SERVER_PID=$!
    SERVER_ERR=$err
    for ((i = 0; i < 100; i++)); do
        if grep -q 'listening on' "$err" 2>/dev/null; then
            PORT=$(grep -o 'listening on [0-9.]*:[0-9]*' "$err" | head -1 | sed 's/.*://')
            log "ringcast pid $SERVER_PID on 127.0.0.1:$PORT ($*)"
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "ringcast exited before listening:"; cat "$err" >&2
            SERVER_PID=""
            return 1
        fi
        sleep 0.1
    done
    log "ringcast did not print 'listening on' within 10 s"; cat "$err" >&2
    return 1
}

server_alive() { [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; }

# Prints the server's /stats JSON (empty object if unreachable within 5 s).
server_stats() {
    curl -s --max-time 5 "http://127.0.0.1:$PORT/stats" || echo '{}'
}

# mem_snapshot PID OUTFILE: VmRSS etc. from status and smaps_rollup, in kB, as JSON.
mem_snapshot() {
    local pid=$1 out=$2
    "$PY" - "$pid" >"$out" <<'EOF'
import json, sys
pid = sys.argv[1]
snap = {}
def kb(path, keys):
    d = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in keys:
                d[k] = int(v.split()[0])
    return d
snap['status'] = kb(f'/proc/{pid}/status', {'VmRSS', 'RssAnon', 'RssFile', 'RssShmem', 'VmData', 'VmHWM'})
snap['smaps_rollup'] = kb(f'/proc/{pid}/smaps_rollup', {'Rss', 'Pss', 'Pss_Anon', 'Shared_Clean', 'Shared_Dirty', 'Private_Clean', 'Private_Dirty', 'Anonymous'})
mi = kb('/proc/meminfo', {'Slab', 'SUnreclaim', 'MemAvailable'})
snap['machine_kb'] = mi
with open('/proc/net/sockstat') as f:
    for line in f:
        if line.startswith('TCP:'):
            p = line.split()[1:]
            snap['sockstat_tcp'] = {p[i]: int(p[i + 1]) for i in range(0, len(p) - 1, 2)}
print(json.dumps(snap))
EOF
}

machine_meta() { # JSON: date, kernel, cpus, which server
    RINGCAST=$RINGCAST SERVER_REV=$SERVER_REV "$PY" - <<'EOF'
import json, os, platform, subprocess, datetime
print(json.dumps({
    'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
    'kernel': platform.release(),
    'cpus': os.cpu_count(),
    'note': 'client and server share the same CPUs, loopback',
    'server_binary': os.environ.get('RINGCAST', ''),
    'server_rev': os.environ.get('SERVER_REV', ''),
    'git_head': subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], capture_output=True, text=True).stdout.strip(),
    'worktree_src_dirty': bool(subprocess.run(['git', 'status', '--porcelain', '--', 'src', 'include', 'Makefile'], capture_output=True, text=True).stdout.strip()),
}))
EOF
}

# wait_quiet: waits (at most QUIET_WAIT s, default 300) until the machine's
# CPUs are < QUIET_PCT % busy (default 10) over 2 s, since other work on this
# shared box disturbs CPU and latency figures. Returns 1 if it never was.
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }
wait_quiet() {
    local limit=${QUIET_WAIT:-300} pct=${QUIET_PCT:-10} ncpu b0 b1 used i
    ncpu=$(nproc)
    for ((i = 0; i < limit; i += 2)); do
        b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
        # ticks of 1/100 s: over 2 s each CPU has 200
        used=$(( (b1 - b0) * 100 / (200 * ncpu) ))
        if [ "$used" -lt "$pct" ]; then
            [ $i -gt 0 ] && log "machine quiet after ${i}s (${used}% busy)"
            return 0
        fi
        [ $((i % 30)) = 0 ] && log "machine ${used}% busy with other work; waiting (at most ${limit}s)"
    done
    log "machine still busy after ${limit}s: running anyway (figures will be disturbed)"
    return 1
}
