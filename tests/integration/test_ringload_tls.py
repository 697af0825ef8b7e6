"""ringload over TLS against ringcast's TLS port: every client kind mixed (SSE, long poll and
short poll over https, WebSocket over wss, publishers over https) with the test root as
--tls-ca loses nothing and counts its handshakes; a CA that did not sign the server's
certificate fails every connection with a message saying so (exit 2); --tls-insecure on
works without a CA; subscribers that churn and reconnect resume their TLS sessions.

The certificates are test_tls's (a root, a leaf for localhost and 127.0.0.1)."""

import json
import os
import subprocess
import tempfile

from harness import check, eq, test
from test_ringload import RINGLOAD, run_ringload
from test_tls import cert, tls_port, tls_server


def tls_args(port, **keys):
    base = "https://localhost:%d" % port
    args = [RINGLOAD, "--sub-url", base + "/sub/{ch}", "--pub-url", base + "/pub/{ch}",
            "--poll-url", base + "/poll/{ch}"]
    for k, v in keys.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    return args


def tls_of(r, kind):
    return r["tls"]["kinds"][kind]


@test
def ringload_tls_every_kind(t):
    """https SSE, long poll, short poll and publishers, then wss WebSocket (280 clients):
    nothing lost or duplicated, every client's handshake counted with its time."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with tls_server(t) as s, tempfile.TemporaryDirectory() as d:
        port = tls_port(s)
        out = os.path.join(d, "r.json")
        kinds = dict(sse=80, longpoll=60, poll=60)
        # sub_url serves SSE, WebSocket and long poll alike, and WebSocket needs wss: the
        # WebSockets get a run of their own below.
        rc, text = run_ringload(t, tls_args(
            port, poll_interval="250ms", channels=4, publishers=2, publish_rate=120,
            warmup="0.5", duration=2, ramp=0, threads=2, json=out, tls_ca=cert("root.pem"),
            server_pid=s.proc.pid, **kinds), timeout=60)
        eq(rc, 0, "ringload exit status; it said:\n" + text)
        r = json.load(open(out))
        eq((r["lost"], r["duplicated_or_reordered"]), (0, 0), "lost, duplicated")
        for k, n in kinds.items():
            eq(r["kinds"][k]["subscribed"], n, k + " subscribed")
            check(r["kinds"][k]["deliveries"] > 0, "%s delivered nothing" % k)
            eq(tls_of(r, k)["handshakes"], n, k + " TLS handshakes")
            eq(tls_of(r, k)["failed"], 0, k + " TLS failures")
            ms = tls_of(r, k)["handshake_ms"]
            check(0 < ms["p50"] <= ms["max"] and ms["count"] == n, "handshake times %r" % ms)
        eq(tls_of(r, "publishers")["handshakes"], 2, "publisher handshakes")
        check("ringload: TLS sse" in text, "no TLS line in the summary:\n" + text)

        out = os.path.join(d, "w.json")
        args = tls_args(port, sse=0, ws=80, channels=4, publishers=1, publish_rate=80,
                        warmup="0.5", duration="1.5", ramp=0, threads=2, json=out,
                        tls_ca=cert("root.pem"))
        args[2] = "wss://localhost:%d/sub/{ch}" % port
        rc, text = run_ringload(t, args, timeout=60)
        eq(rc, 0, "ringload (wss) exit status; it said:\n" + text)
        r = json.load(open(out))
        eq((r["lost"], r["duplicated_or_reordered"]), (0, 0), "wss: lost, duplicated")
        eq(r["kinds"]["ws"]["subscribed"], 80, "ws subscribed")
        check(r["kinds"]["ws"]["deliveries"] > 0, "ws delivered nothing")
        eq(tls_of(r, "ws")["handshakes"], 80, "ws TLS handshakes")
        eq(r["ws_closes"], 80, "WebSocket close handshakes over TLS")


@test
def ringload_tls_wrong_ca_fails_clearly(t):
    """A root that did not sign the server's certificate: every handshake fails as bad_cert,
    ringload says so and how to fix it, and exits 2."""
    with tls_server(t) as s, tempfile.TemporaryDirectory() as d:
        ca = os.path.join(d, "other-root.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                        os.path.join(d, "other-root.key"), "-out", ca, "-subj", "/CN=other",
                        "-days", "2"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        out = os.path.join(d, "r.json")
        rc, text = run_ringload(t, tls_args(
            tls_port(s), sse=20, poll=10, channels=2, publishers=1, publish_rate=10,
            warmup="0.2", duration="0.5", ramp=0, threads=2, tls_ca=ca, json=out))
        eq(rc, 2, "ringload exit status; it said:\n" + text)
        check("no connection succeeded" in text, "no 'no connection succeeded':\n" + text)
        check("31 TLS handshakes failed (bad_cert 31)" in text,
              "the failures are not counted as bad_cert:\n" + text)
        check("--tls-ca" in text and "--tls-insecure on" in text,
              "the message does not say what to do:\n" + text)


@test
def ringload_tls_insecure_without_ca(t):
    """--tls-insecure on, no CA, the server named by address: it works, no loss."""
    with tls_server(t) as s, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        args = tls_args(tls_port(s), sse=40, channels=2, publishers=1, publish_rate=40,
                        warmup="0.3", duration=1, ramp=0, threads=2, tls_insecure="on",
                        json=out)
        args = [a.replace("localhost", "127.0.0.1") for a in args]
        rc, text = run_ringload(t, args)
        eq(rc, 0, "ringload exit status; it said:\n" + text)
        r = json.load(open(out))
        eq((r["lost"], r["kinds"]["sse"]["subscribed"]), (0, 40), "lost, subscribed")
        eq(tls_of(r, "sse")["handshakes"], 40, "sse TLS handshakes")


@test
def ringload_tls_churn_resumes_sessions(t):
    """SSE, long-poll and short-poll subscribers drop every 0.5 s on average and come back
    with since: their new handshakes resume the TLS session, and nothing is lost."""
    with tls_server(t) as s, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        rc, text = run_ringload(t, tls_args(
            tls_port(s), sse=40, longpoll=20, poll=20, poll_interval="300ms", channels=3,
            publishers=1, publish_rate=60, warmup="0.5", duration="2.5", ramp=0, threads=2,
            reconnect="on", churn="500ms", backoff_ms=20, resume="since",
            tls_ca=cert("root.pem"), json=out), timeout=60)
        eq(rc, 0, "ringload exit status; it said:\n" + text)
        r = json.load(open(out))
        eq((r["lost"], r["duplicated_or_reordered"]), (0, 0), "lost, duplicated")
        check(r["reconnects"]["made"] >= 100, "only %d reconnects" % r["reconnects"]["made"])
        resumed = sum(tls_of(r, k)["resumed"] for k in ("sse", "longpoll", "poll"))
        failed = sum(tls_of(r, k)["failed"] for k in ("sse", "longpoll", "poll"))
        check(resumed > 0, "no TLS session was resumed:\n" + text)
        eq(failed, 0, "failed TLS handshakes (a resumption refused?)")
