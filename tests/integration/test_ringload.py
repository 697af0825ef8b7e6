"""ringload against ringcast: every delivery checked (no loss, no duplicates, in order), the
JSON result written, and a server that dies mid-run reported with a non-zero exit."""

import json
import os
import subprocess
import tempfile
import time

from harness import check, eq, test

RINGLOAD = os.path.join(os.path.dirname(__file__), "..", "..", "build", "ringload")


def ringload_args(s, **keys):
    args = [RINGLOAD, "--sub-url", "http://127.0.0.1:%d/sub/{ch}" % s.port,
            "--pub-url", "http://127.0.0.1:%d/pub/{ch}" % s.port]
    for k, v in keys.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    return args


@test
def ringload_sse_zero_loss(t):
    """300 SSE subscribers on 6 channels across both workers, 2 publishers at 300 msg/s for 2 s:
    ringload exits 0, and its JSON says every acknowledged message reached every subscriber."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        p = t.spawn(ringload_args(s, sse=300, channels=6, publishers=2, publish_rate=300,
                                  warmup="0.5", duration=2, ramp=0, threads=2, json=out,
                                  server_pid=s.proc.pid),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            text = p.communicate(timeout=40)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        eq(p.returncode, 0, "ringload exit status; it said:\n" + text)
        r = json.load(open(out))
        eq(r["subscribers"], 300, "subscribers")
        eq((r["lost"], r["duplicated_or_reordered"], r["id_mismatches"]), (0, 0, 0),
           "lost, duplicated/reordered, id mismatches")
        check(r["acknowledged"] >= 600, "at least 600 publishes acknowledged: %r", r["acknowledged"])
        check(r["deliveries"] >= r["acknowledged"] * 50, "each message reached its 50 subscribers: %r",
              r["deliveries"])
        check(r["latency_ms"]["count"] > 0, "latencies measured: %r", r["latency_ms"])


@test
def ringload_server_killed(t):
    """The server killed mid-run: ringload says so and exits non-zero within seconds."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server(expect_exit=-9) as s:
        p = t.spawn(ringload_args(s, sse=50, channels=2, publishers=1, publish_rate=100,
                                  warmup="0.2", duration=10, ramp=0, threads=1,
                                  server_pid=s.proc.pid),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.5)
        s.proc.kill()
        try:
            text = p.communicate(timeout=15)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        check(p.returncode != 0, "ringload should fail when the server dies; it said:\n" + text)
        check("gone" in text, "ringload should say the server is gone:\n" + text)


@test
def ringload_unreachable(t):
    """No server: a clear error within seconds, exit 2."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    start = time.monotonic()
    p = t.spawn([RINGLOAD, "--sub-url", "http://127.0.0.1:9/sub/{ch}",
                 "--pub-url", "http://127.0.0.1:9/pub/{ch}", "--duration", "1"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = p.communicate(timeout=15)[0].decode(errors="replace")
    eq(p.returncode, 2, "exit status for an unreachable server; it said:\n" + text)
    check("cannot reach" in text, "the message should say the server cannot be reached:\n" + text)
    check(time.monotonic() - start < 10, "the error should come within seconds")


@test
def ringload_catches_injected_loss(t):
    """ringcast --fault-drop 10000 skips one delivery in 10,000: ringload must see every one,
    report the loss and exit 1."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server(fault_drop=10000) as s, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        p = t.spawn(ringload_args(s, sse=200, channels=4, publishers=2, publish_rate=400,
                                  warmup="0.3", duration="1.5", ramp=0, threads=2, json=out),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = p.communicate(timeout=40)[0].decode(errors="replace")
        eq(p.returncode, 1, "ringload exit status with injected loss; it said:\n" + text)
        r = json.load(open(out))
        # about (deliveries + lost) / 10000 were skipped; each is a loss ringload must count
        expected = (r["deliveries"] + r["lost"]) // 10000
        check(r["lost"] >= max(1, expected - 2), "lost %r, expected about %r" % (r["lost"], expected))
        eq(r["duplicated_or_reordered"], 0, "duplicated or reordered")
