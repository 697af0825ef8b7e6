"""ringload's reconnects (reconnect = on, churn, resume) and WebSocket compression against
ringcast: subscribers that drop and come back still get every message when they resume, a
resume beyond the server's history is a signalled gap and not a silent loss, injected loss is
still caught while clients churn, and ws_deflate subscribers inflate every message."""

import os
import re

from harness import check, eq, json_answer, test
from test_ringload import RINGLOAD, ringload_args, run_ringload


def summary(text):
    """The figures of ringload's summary lines that these tests read."""
    def num(pattern):
        m = re.search(pattern, text)
        check(m is not None, "ringload's summary has no %r:\n%s" % (pattern, text))
        return int(m.group(1))
    return {
        "lost": num(r"ringload: lost (\d+),"),
        "dup": num(r"duplicated or reordered (\d+), id mismatches"),
        "gaps": num(r"gaps signalled (\d+)"),
        "reconnects": num(r"(\d+) reconnects"),
        "churn": num(r"(\d+) churn drops"),
        "skipped": num(r"(\d+) skipped over signalled gaps"),
        "inflated": num(r"(\d+) compressed WebSocket frames"),
    }


@test
def ringload_churn_resume_zero_loss(t):
    """Every kind of subscriber drops its connection every 0.5 s on average and reconnects
    after ~20 ms asking for what it missed (SSE with Last-Event-ID, WebSocket and pollers with
    since): hundreds of reconnects, and still no message lost, duplicated or reordered."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s:
        rc, text = run_ringload(t, ringload_args(
            s, sse=60, ws=60, longpoll=30, poll=30, poll_interval="300ms", channels=3,
            publishers=1, publish_rate=90, warmup="0.5", duration="2.5", ramp=0, threads=2,
            reconnect="on", churn="500ms", backoff_ms=20, resume="last-event-id"))
        eq(rc, 0, "ringload exit status; it said:\n" + text)
        f = summary(text)
        eq((f["lost"], f["dup"], f["gaps"], f["skipped"]), (0, 0, 0, 0),
           "lost, duplicated/reordered, gaps, skipped; ringload said:\n" + text)
        check(f["churn"] >= 300 and f["reconnects"] >= 300,
              "churn drops %r and reconnects %r: each of 180 clients about 6 times",
              f["churn"], f["reconnects"])


@test
def ringload_resume_past_history_is_a_gap(t):
    """The server keeps 3 messages per channel and subscribers stay away ~0.5 s at 40 msg/s:
    their resumes reach past the history, the server says so (gap), and ringload counts the
    skipped messages as signalled, not as silent loss (exit 0)."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server(history=3) as s:
        rc, text = run_ringload(t, ringload_args(
            s, sse=20, ws=20, channels=1, publishers=1, publish_rate=40, warmup="0.3",
            duration="2.5", ramp=0, threads=1, reconnect="on", churn="400ms", backoff_ms=500,
            resume="since"))
        eq(rc, 0, "ringload exit status; it said:\n" + text)
        f = summary(text)
        eq((f["lost"], f["dup"]), (0, 0), "lost, duplicated/reordered; ringload said:\n" + text)
        check(f["gaps"] >= 5 and f["skipped"] >= f["gaps"],
              "gaps signalled %r, messages skipped over them %r", f["gaps"], f["skipped"])


@test
def ringload_churn_still_catches_injected_loss(t):
    """--fault-drop 5000 while SSE and WebSocket subscribers churn and resume: the skipped
    deliveries are still caught (a reconnect does not paper over loss) and ringload exits 1."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server(fault_drop=5000) as s:
        rc, text = run_ringload(t, ringload_args(
            s, sse=100, ws=100, channels=4, publishers=2, publish_rate=400, warmup="0.3",
            duration="2", ramp=0, threads=2, reconnect="on", churn="1s", backoff_ms=20,
            resume="since"))
        eq(rc, 1, "ringload exit status with injected loss; it said:\n" + text)
        f = summary(text)
        check(f["lost"] >= 5, "losses caught: %r\n%s", f["lost"], text)
        check(f["reconnects"] >= 100, "reconnects: %r", f["reconnects"])


@test
def ringload_ws_deflate(t):
    """WebSocket subscribers offering permessage-deflate get compressed frames (1 KiB
    messages, above the server's threshold), inflate every one, and lose nothing; without
    ws_deflate nothing comes compressed."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s:
        for deflate in ("on", "off"):
            args = ringload_args(s, sse=0, ws=50, channels=2, publishers=1, publish_rate=100,
                                 message_size=1024, warmup="0.3", duration="1.5", ramp=0,
                                 threads=1, ws_deflate=deflate, reconnect="on", churn="5s")
            rc, text = run_ringload(t, args)
            eq(rc, 0, "ringload exit status (ws_deflate %s); it said:\n%s" % (deflate, text))
            f = summary(text)
            eq((f["lost"], f["dup"]), (0, 0), "lost, duplicated/reordered")
            m = re.search(r"ws +50 clients: 50 subscribed, 0 connect failures, (\d+) deliveries",
                          text)
            check(m is not None, "every WebSocket subscribed:\n" + text)
            if deflate == "on":
                check(f["inflated"] >= int(m.group(1)) * 0.99,
                      "compressed frames %r of %r deliveries", f["inflated"], m.group(1))
            else:
                eq(f["inflated"], 0, "compressed frames without ws_deflate")
        st = json_answer(s.get("/stats"), 200, "GET /stats")["total"]
        eq(st["ws_protocol_errors"], 0, "server: WebSocket protocol errors")


@test
def ringload_websocket_publishers(t):
    """publish_via = ws: each publisher sends its channel's messages as WebSocket text frames and
    takes its own message coming back as the ack; SSE, WebSocket and long-poll subscribers get
    every one (the server counts them as WebSocket messages in). With the server's
    --ws-publish off the publishers are closed and ringload says publishes went unanswered."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s:
        rc, text = run_ringload(t, ringload_args(
            s, sse=60, ws=60, longpoll=30, channels=4, publishers=4, publish_via="ws",
            publish_rate=120, warmup="0.3", duration="1.5", ramp=0, threads=2))
        eq(rc, 0, "ringload exit status; it said:\n" + text)
        check("ringload: lost 0, duplicated or reordered 0, id mismatches 0" in text,
              "nothing lost, duplicated or reordered:\n" + text)
        m = re.search(r"ringload: 150 subscribers, (\d+) published \((\d+) acknowledged, 0 unanswered", text)
        check(m is not None and int(m.group(1)) >= 150 and m.group(1) == m.group(2),
              "every WebSocket publish acknowledged by its echo:\n" + text)
        st = json_answer(s.get("/stats"), 200, "GET /stats")["total"]
        eq(st["ws_messages_in"], int(m.group(1)), "messages the server got from WebSocket clients")
    with t.server(ws_publish="off") as s:
        rc, text = run_ringload(t, ringload_args(
            s, sse=20, channels=2, publishers=2, publish_via="ws", publish_rate=40,
            warmup="0.3", duration="1", ramp=0, threads=1))
        eq(rc, 1, "ringload exit status with publishing refused; it said:\n" + text)
        check("never answered" in text, "ringload should say publishes went unanswered:\n" + text)
