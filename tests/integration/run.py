#!/usr/bin/python3
"""Integration tests of ringcast: start the real binary, check the HTTP contract of README.md.

    /usr/bin/python3 tests/integration/run.py --binary build/asan/ringcast
        [--tiers all|6.1,5.19,5.15,5.10|native] [-k SUBSTRING ...] [-v] [--list] [-x]

Every test runs on every kernel tier (the server gets `--compat TIER`; `native` passes no
--compat). Before a tier's tests a `startup` check starts and stops the server once: if the
server exits at start saying the kernel lacks the tier, that tier's tests are reported SKIP; if
it does not start at all, they are reported FAIL without being run (no 48 slow start-ups).

Output: one line per test, `PASS tier=6.1 name (0.4s)`, `FAIL tier=6.1 name (0.4s): reason`
(then indented detail lines: the server's last stderr lines) or `SKIP ...`; the very last line
is `integration: N passed, M failed` (`, K skipped` appended when some were skipped). Exit
status 1 if anything failed. Standard library only (Debian's /usr/bin/python3).

Examples:
    run.py --binary build/asan/ringcast --tiers 6.1 -k sse_basics
    run.py --binary build/asan/ringcast --tiers 5.10 -k errors_ -v     # -v echoes server stderr
"""

import argparse
import os
import resource
import signal
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import client  # noqa: E402
import harness  # noqa: E402
from harness import Failure, Skip, StartFailure, TierUnsupported  # noqa: E402

import test_publish  # noqa: E402,F401  (registration order = run order)
import test_sse  # noqa: E402,F401
import test_poll  # noqa: E402,F401
import test_info  # noqa: E402,F401
import test_errors  # noqa: E402,F401
import test_multi  # noqa: E402,F401
import test_load  # noqa: E402,F401
import test_ws  # noqa: E402,F401
import test_ws_clients  # noqa: E402,F401
import test_ws_deflate  # noqa: E402,F401
import test_tls  # noqa: E402,F401
import test_ringload  # noqa: E402,F401
import test_ringload_reconnect  # noqa: E402,F401
import test_ringload_results  # noqa: E402,F401
import test_ringload_tls  # noqa: E402,F401
import test_ringload_split  # noqa: E402,F401
import test_ringload_nchan  # noqa: E402,F401
import test_lifecycle  # noqa: E402,F401


class Deadline(Exception):
    pass


def _on_alarm(signum, frame):
    raise Deadline("test exceeded its deadline")


def describe(exc):
    """One-line reason plus detail lines for an exception from a test."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for fr in reversed(tb):
        if os.path.basename(fr.filename).startswith("test_"):
            where = " [%s:%d]" % (os.path.basename(fr.filename), fr.lineno)
            break
    if isinstance(exc, (Failure, client.ClientError)):
        kind = "" if type(exc) in (Failure, StartFailure) else type(exc).__name__ + ": "
    else:
        kind = type(exc).__name__ + ": "
    text = "%s%s" % (kind, exc)
    lines = text.split("\n")
    if not isinstance(exc, (Failure, client.ClientError, Deadline)):
        lines += [l for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:]
                  for l in chunk.rstrip("\n").split("\n")]
    return lines[0][:2000] + where, lines[1:]


class Runner:
    def __init__(self, args):
        self.args = args
        self.passed = self.failed = self.skipped = 0

    def out(self, line):
        print(line, flush=True)

    def run_one(self, fn, tier, timeout=None):
        """Runs one test. Returns 'pass', 'fail', or ('skip', why)."""
        ctx = harness.Ctx(self.args.binary, tier, verbose=self.args.verbose)
        t0 = time.monotonic()
        result, reason, details = "pass", "", []
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout or self.args.timeout or fn.timeout)
        try:
            try:
                fn(ctx)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except TierUnsupported as e:
            result, reason = "skip", "kernel lacks tier %s: %s" % (tier, e)
        except Skip as e:
            result, reason = "skip", str(e)
        except KeyboardInterrupt:
            ctx.cleanup()
            raise
        except BaseException as e:  # noqa: B902 - a test's every failure is a FAIL line
            signal.setitimer(signal.ITIMER_REAL, 0)
            result = "fail"
            reason, details = describe(e)
        try:
            late = ctx.cleanup()
            if late and result == "pass":
                result, reason = "fail", "; ".join(late)
        except BaseException as e:  # noqa: B902
            result = "fail"
            reason = reason or "cleanup failed: %s" % e
        if result == "fail":
            if ctx.notes and reason and reason != "; ".join(ctx.notes):
                # the server's own failure (crash, sanitizer, exit status) is the headline
                reason = "%s; the test saw: %s" % ("; ".join(ctx.notes), reason)
            for s in ctx.servers:
                if s.err or s.out:
                    details.append("server %s, output:" % " ".join(s.args[1:]))
                    details += ["| " + l for l in s.report()]
        elapsed = time.monotonic() - t0
        name = fn.test_name
        tiername = tier if tier else "any"
        if result == "pass":
            self.passed += 1
            self.out("PASS tier=%s %s (%.1fs)" % (tiername, name, elapsed))
        elif result == "skip":
            self.skipped += 1
            self.out("SKIP tier=%s %s (%.1fs): %s" % (tiername, name, elapsed, reason))
        else:
            self.failed += 1
            self.out("FAIL tier=%s %s (%.1fs): %s" % (tiername, name, elapsed, reason))
            for d in details[:120]:
                self.out("    " + d)
        return result

    def selected(self, fn):
        return not self.args.k or any(k in fn.test_name for k in self.args.k)

    def run(self):
        tests = [f for f in harness.REGISTRY if self.selected(f)]
        per_tier = [f for f in tests if f.per_tier]
        once = [f for f in tests if not f.per_tier]
        gate_only = not per_tier and self.selected(startup)
        if not tests and not gate_only:
            self.failed += 1
            self.out("FAIL setup: no test matches -k %s (see --list)" % " -k ".join(self.args.k))
            return
        for tier in self.tiers():
            if gate_only:
                self.run_one(startup, tier, timeout=30)
                continue
            if not per_tier:
                break
            gate = self.run_one(startup, tier, timeout=30)
            for fn in per_tier:
                if gate == "pass":
                    self.run_one(fn, tier)
                    if self.args.exitfirst and self.failed:
                        return
                elif gate == "skip":
                    self.skipped += 1
                    self.out("SKIP tier=%s %s (0.0s): kernel lacks this tier (see startup)" % (tier, fn.test_name))
                else:
                    self.failed += 1
                    self.out("FAIL tier=%s %s (0.0s): not run: the startup check failed on this tier"
                             % (tier, fn.test_name))
            if self.args.exitfirst and self.failed:
                return
        for fn in once:
            self.run_one(fn, None)
            if self.args.exitfirst and self.failed:
                return

    def tiers(self):
        t = self.args.tiers
        if t == "all":
            return list(harness.TIERS)
        return [x.strip() for x in t.split(",") if x.strip()]


def startup(t):
    """The server starts, prints its listening line, answers, and exits 0 on SIGTERM."""
    with t.server() as s:
        r = s.get("/stats")
        harness.check(r.status == 200, "GET /stats answered %s", r.short())


startup.test_name = "startup"
startup.timeout = 30


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def main():
    ap = argparse.ArgumentParser(description="ringcast integration tests")
    ap.add_argument("--binary", default="build/asan/ringcast")
    ap.add_argument("--tiers", default="all", help="all, or a comma list of 6.1,5.19,5.15,5.10,native")
    ap.add_argument("-k", action="append", default=[], help="run tests whose name contains this (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo the server's output")
    ap.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    ap.add_argument("--timeout", type=float, default=None, help="per-test deadline in seconds (default 60)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()
    if args.list:
        print("startup  (per tier, before the others)")
        for f in harness.REGISTRY:
            print("%s%s" % (f.test_name, "" if f.per_tier else "  (once, not per tier)"))
        return 0
    runner = Runner(args)
    interrupted = False
    try:
        bad = [x for x in runner.tiers() if x not in harness.TIERS + ["native"]]
        if bad:
            runner.failed += 1
            runner.out("FAIL setup: unknown tier(s) %s (known: %s, native)" % (",".join(bad), ",".join(harness.TIERS)))
        elif not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
            runner.failed += 1
            runner.out("FAIL setup: server binary %r does not exist or is not executable (build it: make %s)"
                       % (args.binary, args.binary))
        else:
            raise_fd_limit()
            runner.run()
    except KeyboardInterrupt:
        interrupted = True
        runner.failed += 1
        runner.out("FAIL interrupted")
    except BaseException as e:  # noqa: B902 - the result line must still come last
        runner.failed += 1
        reason, details = describe(e)
        runner.out("FAIL harness error: %s" % reason)
        for d in details:
            runner.out("    " + d)
    line = "integration: %d passed, %d failed" % (runner.passed, runner.failed)
    if runner.skipped:
        line += ", %d skipped" % runner.skipped
    sys.stderr.flush()
    print(line, flush=True)
    return 130 if interrupted else (1 if runner.failed else 0)


if __name__ == "__main__":
    sys.exit(main())
