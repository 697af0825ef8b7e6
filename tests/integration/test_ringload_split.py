"""ringload split across processes (role = publish / subscribe, start_at, clock = realtime):
the subscribe-only process checks every delivery against the publishers' schedule, catches
injected loss, and refuses a split without a common start; publish_order = random and
subs_per_channel = A-B do what they say, seen from the server's /channels."""

import json
import os
import tempfile
import time

from harness import check, eq, test
from test_ringload import RINGLOAD, ringload_args, run_ringload


def split_args(s, start_at, **keys):
    return ringload_args(s, start_at="%.3f" % start_at, clock="realtime", **keys)


def run_split(t, s, d, subscribe_keys, **keys):
    """Starts the publish-only process, runs the subscribe-only one to its end, waits for the
    publisher; returns ((sub status, text, json), (pub status, text, json))."""
    start_at = time.time() + 2.5
    sub_json, pub_json = os.path.join(d, "sub.json"), os.path.join(d, "pub.json")
    pub = t.spawn(split_args(s, start_at, role="publish", json=pub_json, **keys),
                  stdout=-1, stderr=-2)
    sub_rc, sub_text = run_ringload(t, split_args(s, start_at, role="subscribe", json=sub_json,
                                                  **dict(keys, **subscribe_keys)))
    try:
        pub_text = pub.communicate(timeout=30)[0].decode(errors="replace")
    except Exception:
        pub.kill()
        raise
    load = lambda f: json.load(open(f)) if os.path.exists(f) else None
    return (sub_rc, sub_text, load(sub_json)), (pub.returncode, pub_text, load(pub_json))


@test(per_tier=False)
def ringload_split_roles_zero_loss(t):
    """Publishers in one process, SSE/WebSocket/long-poll/short-poll subscribers in another,
    both started for the same start_at, random publish order, realtime send times: both exit 0,
    the subscribers got every scheduled message exactly once, in order, and measured latency."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s, tempfile.TemporaryDirectory() as d:
        keys = dict(sse=200, ws=60, longpoll=40, poll=20, poll_interval="300ms", channels=20,
                    publishers=3, publish_rate=200, publish_order="random", warmup="0.5",
                    duration="2", ramp=0, threads=2, channel_prefix="split%d-" % os.getpid())
        (src, stext, sj), (prc, ptext, pj) = run_split(t, s, d, {}, **keys)
        eq(prc, 0, "publish-only exit status; it said:\n" + ptext)
        eq(src, 0, "subscribe-only exit status; it said:\n" + stext)
        check(pj["published"] >= 400 and pj["acknowledged"] == pj["published"],
              "publisher: published %r, acknowledged %r", pj["published"], pj["acknowledged"])
        eq(pj["subscribers"], 0, "the publish-only process has no subscribers")
        eq(sj["published"], 0, "the subscribe-only process publishes nothing")
        eq(sj["subscribers"], 320, "subscribers")
        eq((sj["lost"], sj["duplicated_or_reordered"], sj["id_mismatches"]), (0, 0, 0),
           "lost, duplicated/reordered, id mismatches")
        # every published message reaches the pushed kinds, 15 on each channel (round-robin:
        # 10 SSE, 3 WebSocket, 2 long poll), exactly once: they subscribed before start_at
        pushed = sum(sj["kinds"][k]["deliveries"] for k in ("sse", "ws", "longpoll"))
        check(pushed == pj["published"] * 15,
              "pushed deliveries %r for %r published to 300 pushed subscribers on 20 channels",
              pushed, pj["published"])
        check(sj["latency_ms"]["count"] > 0, "latencies measured: %r", sj["latency_ms"])


@test(per_tier=False)
def ringload_split_catches_injected_loss(t):
    """The server skips one delivery in 1,000: the subscribe-only process, which has no
    publisher answers to go by, still counts the loss and exits 1."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server(fault_drop=1000) as s, tempfile.TemporaryDirectory() as d:
        keys = dict(sse=200, ws=50, channels=10, publishers=2, publish_rate=300, warmup="0.3",
                    duration="1.5", ramp=0, threads=2, channel_prefix="drop%d-" % os.getpid())
        (src, stext, sj), (prc, ptext, _) = run_split(t, s, d, {}, **keys)
        eq(prc, 0, "publish-only exit status; it said:\n" + ptext)
        eq(src, 1, "subscribe-only exit status with injected loss; it said:\n" + stext)
        expected = (sj["deliveries"] + sj["lost"]) // 1000
        check(sj["lost"] >= max(1, expected - 2), "lost %r, expected about %r", sj["lost"], expected)


@test(per_tier=False)
def ringload_split_needs_common_start(t):
    """role without start_at, and a start_at already past: exit 2 with a message that says
    what to give, before anything connects."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s:
        rc, text = run_ringload(t, ringload_args(s, role="subscribe", sse=10, duration=1))
        eq(rc, 2, "exit status without start_at; it said:\n" + text)
        check("needs start_at" in text, "the message names start_at:\n" + text)
        rc, text = run_ringload(t, ringload_args(s, role="publish", start_at=int(time.time()) - 30,
                                                 duration=1))
        eq(rc, 2, "exit status with a past start_at; it said:\n" + text)
        check("ago" in text and "start-at" in text, "the message says it is past:\n" + text)


def channel_info(s, prefix, n):
    """/channels/{ch} of channels 0..n-1; one the server does not know (404) is empty."""
    out = []
    for i in range(n):
        r = s.get("/channels/%s%d" % (prefix, i))
        out.append({"subscribers": 0} if r.status == 404 else json.loads(r.body))
    return out


@test(per_tier=False)
def ringload_subs_per_channel_and_random_order(t):
    """subs_per_channel = 1-5 with 200 subscribers over 100 channels: channels are filled in
    order with 1 to 5 subscribers each (several sizes drawn), the rest get none, 200 in all.
    publish_order = random with one publisher: the channels that got a message in a short
    run are spread over the range, not the first ones in order (sequential)."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s:
        prefix = "spc%d-" % os.getpid()
        p = t.spawn(ringload_args(s, sse=150, ws=50, channels=100, subs_per_channel="1-5",
                                  publishers=1, publish_rate=20, publish_order="random",
                                  warmup="0.2", duration="2", ramp=0, threads=2,
                                  channel_prefix=prefix), stdout=-1, stderr=-2)
        deadline = time.monotonic() + 15
        while True:
            info = channel_info(s, prefix, 100)
            sizes = [c["subscribers"] for c in info]
            if sum(sizes) == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        text = p.communicate(timeout=30)[0].decode(errors="replace")
        eq(p.returncode, 0, "ringload exit status; it said:\n" + text)
        eq(sum(sizes), 200, "subscribers on the channels (sizes %r)" % sizes)
        used = [n for n in sizes if n]
        check(all(1 <= n <= 5 for n in used), "every used channel has 1-5: %r", sizes)
        k = len(used)
        check(sizes[:k] == used, "channels filled in order: %r", sizes)
        check(len(set(used)) >= 3, "several sizes drawn: %r", sizes)
        info = channel_info(s, prefix, 100)
        hit = [i for i, c in enumerate(info) if c.get("last_id")]
        # 20 msg/s for 2.2 s over 100 channels: ~44 channels got one; in order they would be
        # channels 0..43
        check(20 <= len(hit) <= 60, "channels published to: %r", hit)
        check(hit != list(range(len(hit))), "random order should not hit channels in order: %r",
              hit)
        check(max(hit) >= 80, "random order should reach the end of the range: %r", hit)
