"""Fan-out across workers and channels (one channel, several, and several per subscriber), and a
slow consumer that must not hurt the others."""

import time

import client
from client import drain_available, pump_all
from harness import Failure, check, eq, json_answer, test
from test_multi import Track


def connect_all(s, paths, rcvbuf=None, timeout=20):
    subs = [s.sse(p, rcvbuf=rcvbuf) for p in paths]
    pump_all(subs, lambda: all(x.settled() for x in subs), timeout, "SSE preambles")
    for x in subs:
        x.preamble(timeout=0.5)  # checks status 200 and that the first block is retry:
    return subs


def expect_streams(subs, want, timeout, what):
    """Every stream receives exactly `want` (list of (id, data)), in order."""
    n = len(want)

    def done():
        for i, x in enumerate(subs):
            if x.eof and x.n_events < n:
                raise Failure("%s: subscriber %d of %d (%s) ended (%s) after %d of %d events"
                              % (what, i, len(subs), x.path, "reset" if x.reset else "EOF", x.n_events, n))
        return all(x.n_events >= n for x in subs)
    try:
        pump_all(subs, done, timeout, what)
    except (client.Timeout, client.Closed) as e:
        counts = sorted(x.n_events for x in subs)
        raise Failure("%s; events per subscriber min %d max %d (want %d); ended streams: %d"
                      % (e, counts[0], counts[-1], n, sum(1 for x in subs if x.eof)))
    drain_available(subs)
    for i, x in enumerate(subs):
        got = [(e.id, e.data) for e in x.all_events()]
        if got != want:
            bad = next((k for k in range(min(len(got), n)) if got[k] != want[k]), min(len(got), n))
            raise Failure("%s: subscriber %d of %d (%s): %d events, first difference at #%d: got %r, want %r"
                          % (what, i, len(subs), x.path, len(got), bad, got[bad:bad + 2], want[bad:bad + 2]))
        check(not x.eof, "%s: subscriber %d stream ended", what, i)


@test
def sse_fanout_200(t):
    """--workers 2, 200 SSE subscribers (own connections, so both workers): 50 publishes reach
    every one exactly once, in order; the answers' subscribers reach 200."""
    N, M = 200, 50
    with t.server() as s:
        subs = connect_all(s, ["/sub/fan"] * N)
        keep = s.conn()
        answers = []
        want = []
        for i in range(1, M + 1):
            body = "fan %d %s" % (i, "x" * (i * 7 % 40))
            v = s.publish("fan", body, conn=keep if i % 3 else None)
            answers.append(v)
            want.append((str(i), body))
            drain_available(subs)
        eq([v["id"] for v in answers], list(range(1, M + 1)), "publish ids")
        counts = [v["subscribers"] for v in answers]
        check(max(counts) <= N, "publish answers count more subscribers than exist: %r", counts)
        eq(counts[-1], N, "subscribers in the last publish answer (all: %r)" % counts)
        expect_streams(subs, want, 30, "fan-out to %d subscribers" % N)
        time.sleep(0.2)
        drain_available(subs)
        check(all(x.n_events == M for x in subs), "extra events after the %d messages", M)


@test
def sse_multi_channel(t):
    """5 channels x 8 subscribers, 20 publishes per channel interleaved: each subscriber gets
    exactly its own channel's messages, in order; ids count per channel."""
    C, S, M = 5, 8, 20
    chans = ["mc%d" % k for k in range(C)]
    with t.server() as s:
        subs = connect_all(s, ["/sub/" + ch for ch in chans for _ in range(S)])
        keep = s.conn()
        last = {}
        for i in range(1, M + 1):
            for k, ch in enumerate(chans):
                v = s.publish(ch, "%s-%d" % (ch, i), conn=keep if (i + k) % 2 else None)
                eq(v["id"], i, "id of message %d on %s" % (i, ch))
                last[ch] = v["subscribers"]
            drain_available(subs)
        eq(last, {ch: S for ch in chans}, "subscribers in each channel's last publish answer")
        for k, ch in enumerate(chans):
            expect_streams(subs[k * S:(k + 1) * S], [(str(i), "%s-%d" % (ch, i)) for i in range(1, M + 1)],
                           20, "channel " + ch)
        time.sleep(0.2)
        drain_available(subs)
        check(all(x.n_events == M for x in subs), "a subscriber got another channel's messages")


@test
def sse_fanout_multi(t):
    """100 SSE subscribers on /sub/x,y over both workers; 30 publishes alternating x and y from
    different connections: every subscriber gets all 30 exactly once, each channel in order,
    with composite ids; the publish answers' subscribers reach 100."""
    N, M = 100, 30
    with t.server() as s:
        subs = connect_all(s, ["/sub/x,y" if i % 2 else "/sub/y,x" for i in range(N)])
        st = json_answer(s.get("/stats"), 200, "GET /stats")
        per = st.get("per_worker") if isinstance(st, dict) else None
        if isinstance(per, list) and per and all(isinstance(w, dict) and "sse_subscribers" in w for w in per):
            check(all(w["sse_subscribers"] > 0 for w in per),
                  "the %d subscribers are not spread over both workers: %r", N,
                  [w["sse_subscribers"] for w in per])
        conns = [s.conn() for _ in range(3)]
        answers = {"x": [], "y": []}
        want = {"x": [], "y": []}
        for i in range(M):
            ch = "xy"[i % 2]
            body = "%s %d %s" % (ch, i, "z" * (i * 11 % 50))
            v = s.publish(ch, body, conn=conns[i % 3] if i % 4 else None)
            answers[ch].append(v)
            want[ch].append((len(want[ch]) + 1, body))
            drain_available(subs)
        for ch in "xy":
            eq([v["id"] for v in answers[ch]], list(range(1, M // 2 + 1)), "publish ids on " + ch)
            counts = [v["subscribers"] for v in answers[ch]]
            check(max(counts) <= N, "publish answers on %s count more subscribers than exist: %r", ch, counts)
            eq(counts[-1], N, "subscribers in the last publish answer on %s (all: %r)" % (ch, counts))

        def done():
            for i, x in enumerate(subs):
                if x.eof and x.n_events < M:
                    raise Failure("subscriber %d (%s) ended after %d of %d events" % (i, x.path, x.n_events, M))
            return all(x.n_events >= M for x in subs)
        try:
            pump_all(subs, done, 20, "30 messages on every subscriber of x,y")
        except (client.Timeout, client.Closed) as e:
            counts = sorted(x.n_events for x in subs)
            raise Failure("%s; events per subscriber min %d max %d (want %d)" % (e, counts[0], counts[-1], M))
        time.sleep(0.2)
        drain_available(subs)
        for i, x in enumerate(subs):
            tr = Track(["x", "y"], {}, "subscriber %d of %d (%s)" % (i, N, x.path))
            tr.feed_all(x.all_events())
            tr.expect(want, "received")
            check(not x.eof, "subscriber %d stream ended", i)


def find_drop(v, under=False):
    """Largest number under any key containing "drop", anywhere in the JSON."""
    best = 0
    if isinstance(v, dict):
        for k, x in v.items():
            best = max(best, find_drop(x, under or "drop" in str(k).lower()))
    elif isinstance(v, list):
        for x in v:
            best = max(best, find_drop(x, under))
    elif under and isinstance(v, (int, float)) and not isinstance(v, bool):
        best = v
    return best


def kernel_send_buffer_max():
    """What the kernel may buffer for one stalled loopback receiver before the server's own
    queue grows: the sender's send buffer autotunes up to tcp_wmem's max (4 MiB by default),
    however small the receiver's SO_RCVBUF. Measured: ~3 MB sent to a 4 KiB-rcvbuf receiver
    before a send would block."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


@test(timeout=90)
def slow_consumer_dropped(t):
    """--max-queue 65536: a subscriber that never reads (SO_RCVBUF 4096) is dropped and counted
    in /stats; 20 others get every 4 KiB message in order and stay subscribed.

    At least 300 messages are published, then more until /stats counts the drop: the kernel
    absorbs up to tcp_wmem max (4 MiB) for the stalled socket before the server's queue can
    grow, so 300 x 4 KiB alone cannot overflow it on Linux's defaults."""
    N, SIZE, MIN, QUEUE = 20, 4096, 300, 65536
    limit = MIN + (2 * kernel_send_buffer_max() + 4 * QUEUE) // SIZE
    with t.server(max_queue=QUEUE) as s:
        stalled = connect_all(s, ["/sub/slow"], rcvbuf=4096)[0]
        normal = connect_all(s, ["/sub/slow"] * N)
        keep = s.conn()
        want, counts = [], []
        dropped, stats = 0, None
        i = 0
        while i < limit:
            i += 1
            body = ("%05d" % i) + chr(ord("a") + i % 26) * (SIZE - 5)
            v = s.publish("slow", body, conn=keep)
            eq(v["id"], i, "publish id")
            counts.append(v["subscribers"])
            want.append((str(i), body))
            drain_available(normal)
            if i >= MIN and i % 25 == 0 and not dropped:
                stats = json_answer(keep.get("/stats"), 200, "GET /stats")
                dropped = find_drop(stats)
                if dropped:
                    limit = min(limit, i + 10)  # a few more after the drop
        check(dropped >= 1, "/stats counts no drop (no key containing 'drop' >= 1) after %d messages of %d "
              "bytes: %s", i, SIZE, str(stats)[:1500])
        M = len(want)
        expect_streams(normal, want, 30, "normal subscribers")
        eq(counts[-1], N, "subscribers in the last publish answer (the stalled one is gone)")
        check(max(counts) <= N + 1, "publish answers count more subscribers than exist: %r", max(counts))
        # The dropped subscriber's record is freed although its client neither reads nor
        # closes: the send that waited for room in its socket was cancelled.
        deadline = time.monotonic() + 5
        while True:
            held = json_answer(keep.get("/stats"), 200, "GET /stats")["total"]["connections"]
            if held <= N + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(held <= N + 1, "connection records held after the drop: %r, expected %d (the "
              "stalled one's record must be freed while its client still holds the socket)",
              held, N + 1)
        ended = stalled.read_to_eof(10, stall=3)
        got = [(e.id, e.data) for e in stalled.all_events()]
        check(ended, "the stalled subscriber was not disconnected (it received %d of %d messages "
              "and the stream is still open)", len(got), M)
        check(len(got) < M, "the stalled subscriber received all %d messages", M)
        eq(got, want[:len(got)], "what the stalled subscriber did receive")
        # the normal ones are still subscribed
        s.publish("slow", "after")
        expect_streams(normal, want + [(str(M + 1), "after")], 5, "normal subscribers after the drop")
