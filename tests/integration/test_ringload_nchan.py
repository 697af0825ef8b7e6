"""ringload's nchan dialects (ws_protocol = nchan, poll_protocol = nchan: WebSocket, long and
short polls) against the real nginx + nchan, started as bench/peers/nchan-common.sh starts it
and stopped by its PID even when the test fails; and against ringcast, which does not speak
them, a clean connect failure.

nginx + nchan is the one peer these tests need: when it is missing they FAIL naming the Debian
packages (nginx-light libnginx-mod-nchan), never skip. They run once, not per kernel tier: the
server under test is nginx, which has no tiers."""

import json
import os
import subprocess
import tempfile

from harness import check, eq, test
from test_ringload import RINGLOAD, ringload_args
from test_ringload import run_ringload as run_ringload_args

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
COMMON = os.path.join(ROOT, "bench", "peers", "nchan-common.sh")
NGINX, NCHAN_SO = "/usr/sbin/nginx", "/usr/lib/nginx/modules/ngx_nchan_module.so"

# Starts nginx + nchan with nchan-common.sh's nchan_start, prints "port PORT", then waits for
# its stdin to close and stops nginx with nchan_stop (by PID, bounded): the test closes stdin
# in a finally block, so nginx goes whatever happened.
WRAPPER = r'''
set -u
log() { printf 'nchan: %s\n' "$*" >&2; }
source "$1"
NCHAN_DIR=$2
nchan_start || exit 1
echo "port $NCHAN_PORT"
cat >/dev/null
nchan_stop
'''


class Nchan:
    def __init__(self, d):
        self.dir = d
        self.proc = subprocess.Popen(["bash", "-c", WRAPPER, "nchan", COMMON, d],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("port "):
            err = self.stop()
            raise AssertionError("nginx + nchan did not start: %s" % err)
        self.port = int(line.split()[1])

    def stop(self):
        """Ends the wrapper (which stops nginx by PID); if it hangs, the master by the PID
        file it wrote itself. Returns the wrapper's stderr."""
        try:
            err = self.proc.communicate(timeout=30)[1]  # closes stdin first
        except subprocess.TimeoutExpired:
            try:
                with open(os.path.join(self.dir, "master.pid")) as f:
                    os.kill(int(f.read().strip()), 9)
            except (OSError, ValueError):
                pass
            self.proc.kill()
            err = self.proc.communicate()[1]
        return err.decode(errors="replace")


def need_nchan():
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    check(os.access(NGINX, os.X_OK) and os.path.exists(NCHAN_SO),
          "nginx + nchan is not installed (%s, %s): apt-get install -y nginx-light "
          "libnginx-mod-nchan (make install-pkgs PKGS=\"nginx-light libnginx-mod-nchan\")"
          % (NGINX, NCHAN_SO))


def run_ringload(t, port, timeout=60, **keys):
    """ringload against whatever listens on 127.0.0.1:port; (exit status, its output)."""
    class S:  # what ringload_args reads of a server
        pass
    s = S()
    s.port = port
    return run_ringload_args(t, ringload_args(s, **keys), timeout=timeout)


@test(per_tier=False, timeout=90.0)
def ringload_nchan_ws_polls_zero_loss(t):
    """200 WebSocket (ws+meta.nchan), 200 long-poll and 200 short-poll (Etag) subscribers on 40
    channels of nginx + nchan, 2 publishers at 40 msg/s (1 per channel per second, so a short
    poller asking every 0.25 s keeps up with nchan's one message per answer) for 3 s: ringload
    exits 0 with 0 lost, 0 duplicated, 0 id mismatches, and each kind got its channel's messages."""
    need_nchan()
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        os.mkdir(os.path.join(d, "nchan"))
        n = Nchan(os.path.join(d, "nchan"))
        try:
            rc, text = run_ringload(t, n.port, sse=0, ws=200, longpoll=200, poll=200, channels=40,
                                    publishers=2, publish_rate=40, poll_interval="0.25s",
                                    warmup="1", duration=3, ramp=0, threads=2, json=out,
                                    ws_protocol="nchan", poll_protocol="nchan")
        finally:
            err = n.stop()
        eq(rc, 0, "ringload exit status; it said:\n" + text + "\nnginx wrapper:\n" + err)
        r = json.load(open(out))
        eq(r["subscribers"], 600, "subscribers")
        eq((r["lost"], r["duplicated_or_reordered"], r["id_mismatches"]), (0, 0, 0),
           "lost, duplicated/reordered, id mismatches")
        check(r["acknowledged"] >= 120, "at least 120 publishes acknowledged: %r", r["acknowledged"])
        for kind, share in (("ws", 0.9), ("longpoll", 0.9), ("poll", 0.5)):
            k = r["kinds"][kind]
            eq((k["subscribed"], k["lost"]), (200, 0), kind + " subscribed, lost")
            # 5 subscribers of each kind per channel; a short poller's first answer is
            # history (it anchors after it), so it owes somewhat less.
            check(k["deliveries"] >= r["acknowledged"] * 5 * share,
                  "%s: each message reached its 5 subscribers: %r of %r acknowledged", kind,
                  k["deliveries"], r["acknowledged"])


@test(per_tier=False, timeout=60.0)
def ringload_nchan_default_protocols_refused(t):
    """ringload's default WebSocket dialect against nchan: nchan answers without the
    ringcast.json subprotocol, so every connect fails (counted) and ringload exits non-zero."""
    need_nchan()
    with tempfile.TemporaryDirectory() as d:
        n = Nchan(d)
        try:
            rc, text = run_ringload(t, n.port, sse=0, ws=5, channels=1, publish_rate=20,
                                    warmup=0, duration=1, ramp=0, threads=1)
        finally:
            n.stop()
        check(rc != 0, "ringload should fail; it said:\n" + text)
        check("5 connect failures" in text, "5 WebSocket connect failures:\n" + text)


@test(per_tier=False, timeout=60.0)
def ringload_nchan_protocol_against_ringcast(t):
    """ws_protocol = nchan against ringcast, which never selects ws+meta.nchan: every connect
    fails, clearly, and ringload exits non-zero."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s:
        p = t.spawn(ringload_args(s, sse=0, ws=5, channels=1, publish_rate=20, warmup=0,
                                  duration=1, ramp=0, threads=1, ws_protocol="nchan"),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = p.communicate(timeout=30)[0].decode(errors="replace")
        check(p.returncode != 0, "ringload should fail; it said:\n" + text)
        check("5 connect failures" in text, "5 WebSocket connect failures:\n" + text)
