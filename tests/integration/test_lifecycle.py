"""Shutdown (SIGTERM/SIGINT drain), flags the server must refuse, --bind IPv6, --disable."""

import re
import signal
import socket
import subprocess
import time

from harness import SANITIZER_RE, Failure, Skip, check, eq, json_answer, test


@test
def sigterm_drain(t):
    """--drain 2, SIGTERM with an SSE subscriber and a waiting long poll: the long poll is
    answered (200, a messages list), the SSE stream ends, the process exits 0 within 4 s."""
    with t.server(drain=2, poll_timeout=30) as s:
        sub = s.sse("/sub/d")
        sub.preamble()
        s.publish("d", "m1")
        eq([(e.id, e.data) for e in sub.events(1)], [("1", "m1")], "SSE before SIGTERM")
        lp = s.conn()
        lp.send(b"GET /sub/d?since=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        lp.expect_silent(0.4, "the long poll answered before SIGTERM")
        t0 = s.terminate()
        limit = t0 + 2 + 2
        r = lp.read_response(timeout=max(0.1, limit - time.monotonic()))
        v = json_answer(r, 200, "long poll answered on SIGTERM")
        check(isinstance(v, dict) and isinstance(v.get("messages"), list),
              "long poll answer on SIGTERM has no messages list: %r", v)
        check(sub.read_to_eof(max(0.1, limit - time.monotonic())),
              "SSE stream still open %.1fs after SIGTERM", time.monotonic() - t0)
        rc = s.wait_exit(max(0.1, limit - time.monotonic()))
        check(rc is not None, "server still running %.1fs after SIGTERM with --drain 2", time.monotonic() - t0)
        eq(rc, 0, "exit status after SIGTERM")
    # SIGINT drains too; with nothing open the exit is prompt
    with t.server(drain=2) as s:
        s.publish("d", "x")
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGINT)
        s.term_sent_at = t0
        rc = s.wait_exit(4)
        check(rc is not None, "server still running 4 s after SIGINT with no connections")
        eq(rc, 0, "exit status after SIGINT")


@test(per_tier=False)
def bad_flags(t):
    """The server refuses bad flags: exits non-zero, without listening, within 5 s."""
    cases = [
        ["--compat", "4.19"],
        ["--compat", "banana"],
        ["--no-such-flag"],
        ["--port", "notaport"],
        ["--port", "70000"],
        ["--disable", "no_such_feature"],
        ["--workers"],
    ]
    for extra in cases:
        args = [t.binary, "--port", "0", "--bind", "127.0.0.1", "--workers", "1"] + extra
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
        except subprocess.TimeoutExpired as e:
            out = (e.stderr or b"") + (e.stdout or b"")
            raise Failure("%s: still running after 5 s (should refuse the flag); output %r"
                                 % (" ".join(extra), out[-300:]))
        out = (p.stderr + p.stdout).decode("utf-8", "replace")
        check(p.returncode not in (0, None) and p.returncode > 0,
              "%s: exit status %s, expected a non-zero exit (not a crash); output %r", " ".join(extra),
              p.returncode, out[-300:])
        check("listening on" not in out, "%s: listened anyway: %r", " ".join(extra), out[-300:])
        check(not SANITIZER_RE.search(out), "%s: sanitizer report: %s", " ".join(extra), out[-2000:])
        check(out.strip(), "%s: exits without saying why", " ".join(extra))


@test(per_tier=False)
def bind_ipv6(t):
    """--bind ::1 listens on IPv6 loopback; publish and poll work there."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as e:
        raise Skip("no IPv6 loopback here: %s" % e)
    with t.server(bind="::1") as s:
        eq(s.publish("v6", "hi")["id"], 1, "publish over IPv6")
        v = json_answer(s.get("/poll/v6"), 200, "poll over IPv6")
        eq([m["data"] for m in v["messages"]], ["hi"], "poll over IPv6")


@test(per_tier=False)
def disable_every_feature(t):
    """--disable with every feature of README's table: the fallbacks serve SSE, long poll and
    fan-out across 2 workers (on the running kernel's best tier otherwise)."""
    feats = "single_issuer,accept_multishot,recv_multishot,poll_multishot,direct,msg_ring"
    with t.server(disable=feats) as s:
        subs = [s.sse("/sub/f") for _ in range(10)]
        for x in subs:
            x.preamble()
        lp = s.conn()
        lp.send(b"GET /sub/f HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        for i in range(1, 21):
            s.publish("f", "m%d" % i)
        for x in subs:
            eq([e.id for e in x.events(20)], [str(i) for i in range(1, 21)], "SSE with every feature disabled")
        v = json_answer(lp.read_response(timeout=3), 200, "long poll with every feature disabled")
        eq(v["messages"][0]["id"], 1, "long poll woken by the first publish")
        startup = s.stderr_text()
        check(re.search(r"(?i)io_uring|feature|tier|using", startup),
              "no line about the io_uring features used in the start-up output: %r", startup[:500])
