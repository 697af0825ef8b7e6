"""ringload's results against ringcast: several processes merged into one result (--procs),
a run compared with a baseline it just wrote (passes) and with a doctored one (fails with exit 4,
naming the figure), two shard runs merged with `ringload merge`, and the HdrHistogram log.

These exercise ringload rather than the server's kernel paths, so each runs once, not per tier."""

import base64
import json
import os
import subprocess
import tempfile
import zlib

from harness import check, eq, test
from test_ringload import RINGLOAD, ringload_args, run_ringload as run

# A 2-core machine shared with other work: latency and memory are noisy, so the pass case only
# checks that the machinery runs; the fail case doctors a figure by a factor of ten.
LOOSE = ["--max-regress", "1000", "--max-regress-latency", "100000", "--max-regress-rate", "50"]


def zero_loss(r, what):
    eq((r["lost"], r["duplicated_or_reordered"], r["id_mismatches"], r["unanswered"]), (0, 0, 0, 0),
       what + ": lost, duplicated/reordered, id mismatches, unanswered")


def small_run(s, out, **more):
    keys = dict(sse=120, channels=4, publishers=2, publish_rate=200, warmup="0.3", duration="1.5",
                ramp=0, threads=1, json=out, server_pid=s.proc.pid)
    keys.update(more)
    return ringload_args(s, **keys)


@test(per_tier=False, timeout=90)
def ringload_procs_merged(t):
    """--procs 2: two child processes, each its slice of 6 channels, merged into one JSON:
    no loss, every subscriber counted once, server CPU per delivery measured."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        hlog = os.path.join(d, "lat.hlog")
        rc, text = run(t, ringload_args(s, sse=300, channels=6, publishers=2, publish_rate=300,
                                        warmup="0.5", duration=2, ramp=0, threads=1, procs=2,
                                        json=out, hdr_log=hlog, server_pid=s.proc.pid))
        eq(rc, 0, "ringload --procs 2 exit status; it said:\n" + text)
        check("shard 0/2" in text and "shard 1/2" in text,
              "each child's progress line names its shard:\n" + text)
        r = json.load(open(out))
        eq(r["merged"], 2, "results merged")
        eq(r["subscribers"], 300, "subscribers over both processes")
        eq(r["kinds"]["sse"]["clients"], 300, "sse clients")
        zero_loss(r, "merged")
        check(r["acknowledged"] >= 600, "at least 600 publishes acknowledged: %r", r["acknowledged"])
        check(r["deliveries"] >= r["acknowledged"] * 50 * 0.95,
              "each message reached its 50 subscribers: %r of %r", r["deliveries"], r["acknowledged"])
        check(r["latency_ms"]["count"] > 0, "latencies measured: %r", r["latency_ms"])
        eq(r["exit_status"], 0, "exit_status in the JSON")
        check(r["server_cpu"] is not None and r["server_cpu"]["us_per_delivery"] > 0,
              "server CPU per delivery: %r", r["server_cpu"])
        check(r["machine_cpu"] is not None and 0 <= r["machine_cpu"]["busy_pct"] <= 100,
              "machine CPU: %r", r["machine_cpu"])
        lines = open(hlog).read().splitlines()
        check(lines[0] == "#[Histogram log format version 1.3]", "hdr log header: %r", lines[:3])
        fields = lines[-1].split(",")
        eq(len(fields), 4, "hdr log interval line: %r" % lines[-1][:80])
        eq(fields[1], "2.000", "interval length")


@test(per_tier=False, timeout=120)
def ringload_compare_baseline(t):
    """A run compared with the baseline it just wrote passes; compared with a baseline doctored
    to ten times the deliveries per second and a tenth of the server CPU per delivery it exits
    4 and names both figures with baseline, now and percent; `ringload compare` says the same
    standalone."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s, tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "base.json")
        now = os.path.join(d, "now.json")
        rc, text = run(t, small_run(s, base))
        eq(rc, 0, "baseline run; it said:\n" + text)
        rc, text = run(t, small_run(s, now, compare=base) + LOOSE)
        eq(rc, 0, "run compared with its own baseline; it said:\n" + text)
        check("compare: no regression against" in text, "compare verdict:\n" + text)
        check("ok deliveries_per_s" in text and "ok server_cpu_us_per_delivery" in text,
              "the figures compared:\n" + text)

        b = json.load(open(base))
        b["deliveries_per_s"] *= 10
        # one tick of server CPU over the whole baseline window: now's is far above it
        b["server_cpu"]["ticks"] = {"user0": 0, "system0": 0, "user1": 0, "system1": 1}
        doctored = os.path.join(d, "doctored.json")
        json.dump(b, open(doctored, "w"))
        rc, text = run(t, [RINGLOAD, "compare", doctored, now] + LOOSE + ["--max-regress-cpu", "50"])
        eq(rc, 4, "standalone compare with a doctored baseline; it said:\n" + text)
        check("REGRESSED deliveries_per_s: baseline" in text, "names deliveries_per_s:\n" + text)
        check("REGRESSED server_cpu_us_per_delivery: baseline" in text, "names the CPU:\n" + text)
        check("%" in text and "2 figures regressed" in text, "percent and count:\n" + text)

        rc, text = run(t, small_run(s, os.path.join(d, "again.json"), compare=doctored) + LOOSE)
        eq(rc, 4, "run compared with a doctored baseline; it said:\n" + text)
        check("REGRESSED deliveries_per_s" in text, "names the figure:\n" + text)

        # A figure the baseline lacks is skipped with a note, and loss always fails.
        del b["server_cpu"]
        b["deliveries_per_s"] /= 10
        json.dump(b, open(doctored, "w"))
        n = json.load(open(now))
        n["lost"] = 3
        lossy = os.path.join(d, "lossy.json")
        json.dump(n, open(lossy, "w"))
        rc, text = run(t, [RINGLOAD, "compare", doctored, lossy] + LOOSE)
        eq(rc, 4, "a lossy result fails whatever the baseline; it said:\n" + text)
        check("REGRESSED lost: now 3, must be 0" in text, "the zero-loss rule:\n" + text)
        check("skipped server_cpu_us_per_delivery: not in the baseline" in text,
              "a missing figure is skipped:\n" + text)
        rc, text = run(t, [RINGLOAD, "compare", doctored, os.path.join(d, "missing.json")])
        eq(rc, 2, "an unreadable result; it said:\n" + text)


@test(per_tier=False, timeout=90)
def ringload_merge_shards(t):
    """Two ringload processes started by hand with --shard 0/2 and --shard 1/2 share a scenario;
    `ringload merge` adds them up: counts summed, latency percentiles from the merged histogram
    (so between the shards' own), zero loss, one JSON."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s, tempfile.TemporaryDirectory() as d:
        outs = [os.path.join(d, "s%d.json" % i) for i in range(2)]
        procs = [t.spawn(small_run(s, outs[i], sse=200, channels=5, shard="%d/2" % i),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
        for i, p in enumerate(procs):
            try:
                text = p.communicate(timeout=40)[0].decode(errors="replace")
            except subprocess.TimeoutExpired:
                p.kill()
                raise
            eq(p.returncode, 0, "shard %d/2; it said:\n%s" % (i, text))
        parts = [json.load(open(o)) for o in outs]
        eq([p["shard"] for p in parts], [{"index": 0, "count": 2}, {"index": 1, "count": 2}],
           "each JSON names its shard")
        # channels 0, 2, 4 and 1, 3: 40 subscribers each
        eq([p["subscribers"] for p in parts], [120, 80], "subscribers per shard")
        merged = os.path.join(d, "m.json")
        rc, text = run(t, [RINGLOAD, "merge", outs[0], outs[1], "--json", merged])
        eq(rc, 0, "ringload merge; it said:\n" + text)
        m = json.load(open(merged))
        eq(m["merged"], 2, "merged")
        zero_loss(m, "merged")
        for k in ("subscribers", "published", "acknowledged", "deliveries", "clients"):
            eq(m[k], parts[0][k] + parts[1][k], k + " summed")
        eq(m["latency_ms"]["count"], parts[0]["latency_ms"]["count"] + parts[1]["latency_ms"]["count"],
           "latencies merged")
        for q in ("p50", "p99"):
            lo = min(p["latency_ms"][q] for p in parts)
            hi = max(p["latency_ms"][q] for p in parts)
            check(lo <= m["latency_ms"][q] <= hi, "%s of the merge %r between the shards' %r..%r",
                  q, m["latency_ms"][q], lo, hi)
        eq(m["latency_ms"]["max"], max(p["latency_ms"]["max"] for p in parts), "max")
        check("2 shards merged" in text, "the summary says so:\n" + text)


def hlog_count(b64):
    """The number of values in one interval line's histogram (base64 of the compressed V2
    encoding: cookie, length, zlib of a 40-byte header and zigzag LEB128 counts, negative
    ones being runs of zeros)."""
    raw = base64.b64decode(b64)
    eq(int.from_bytes(raw[:4], "big"), 0x1c849314, "compressed histogram cookie")
    v2 = zlib.decompress(raw[8:])
    eq(int.from_bytes(v2[:4], "big"), 0x1c849313, "V2 histogram cookie")
    p, total = 40, 0
    while p < len(v2):
        v, shift = 0, 0
        while True:
            b = v2[p]
            p += 1
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80 or shift == 56:
                break
        if shift == 56 and p < len(v2) and b & 0x80:
            v |= v2[p] << 56
            p += 1
        c = (v >> 1) ^ -(v & 1)
        total += c if c > 0 else 0
    return total


@test(per_tier=False, timeout=90)
def ringload_hdr_log_per_second(t):
    """One process, a 3 s window: the interval log has a line per second (0, 1, 2 each 1 s
    long, then what the drain brought), and their counts add up to every measured latency."""
    check(os.access(RINGLOAD, os.X_OK), "build/ringload is missing: make build/ringload")
    with t.server() as s, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        hlog = os.path.join(d, "lat.hlog")
        rc, text = run(t, ringload_args(s, sse=60, channels=3, publishers=1, publish_rate=60,
                                        warmup="0.3", duration=3, ramp=0, threads=2, json=out,
                                        hdr_log=hlog))
        eq(rc, 0, "ringload exit status; it said:\n" + text)
        r = json.load(open(out))
        lines = open(hlog).read().splitlines()
        check(lines[0] == "#[Histogram log format version 1.3]", "hdr log header: %r", lines[:3])
        intervals = [ln.split(",") for ln in lines if ln and ln[0].isdigit()]
        check(len(intervals) >= 4, "at least 3 seconds and the drain: %r",
              [i[:3] for i in intervals])
        for k, f in enumerate(intervals[:3]):
            eq((f[0], f[1]), ("%d.000" % k, "1.000"), "interval %d start and length" % k)
            check(hlog_count(f[3]) > 0, "second %d measured nothing" % k)
        starts = [float(f[0]) for f in intervals]
        eq(starts, sorted(starts), "interval starts in order")
        eq(sum(hlog_count(f[3]) for f in intervals), r["latency_ms"]["count"],
           "latencies over all intervals against the JSON's count")
        check(abs(max(float(f[2]) for f in intervals) - r["latency_ms"]["max"]) < 0.0015,
              "the largest interval max is the run's max (%r)", r["latency_ms"]["max"])
