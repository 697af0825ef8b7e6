"""Test registry, the Server context manager and assertion helpers of the integration tests.

A test is a function `def name(t)` decorated with @test; `t` is a Ctx: t.tier, t.server(...),
and helpers. Servers and client sockets a test opens are tracked by the Ctx and always cleaned
up by the runner, even when the test fails or is interrupted by its deadline.
"""

import os
import re
import signal
import subprocess
import threading
import time

import client

TIERS = ["6.1", "5.19", "5.15", "5.10"]
LISTEN_RE = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|runtime error:|LeakSanitizer|WARNING: ThreadSanitizer")
# A server that exits before listening with a message like this lacks the forced kernel tier:
# its tests are skipped, not failed.
TIER_LACK_RE = re.compile(r"(?i)\black(s|ing)?\b|unsupported|not supported|does not support|too old")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# Defaults every server gets unless the test passes the same flag.
DEFAULT_FLAGS = {"--port": "0", "--bind": "127.0.0.1", "--workers": "2", "--drain": "1"}


class Failure(AssertionError):
    """A test assertion failed; the message says what was expected and what came."""


class StartFailure(Failure):
    pass


class TierUnsupported(Exception):
    """The server refused to start because the kernel lacks the forced tier."""


class Skip(Exception):
    """The test cannot run here (e.g. no IPv6 loopback); reported SKIP."""


def listen_re(bind):
    if bind == "127.0.0.1":
        return LISTEN_RE
    return re.compile(rb"listening on \[?" + re.escape(bind.encode()) + rb"\]?:(\d+)")


# ----------------------------------------------------------------------------------------------
# registry


REGISTRY = []


def test(fn=None, *, per_tier=True, timeout=60.0):
    """Register a test. per_tier=False: run once, not on every kernel tier."""

    def reg(f):
        f.per_tier = per_tier
        f.timeout = timeout
        f.test_name = f.__name__
        REGISTRY.append(f)
        return f

    return reg(fn) if fn is not None else reg


# ----------------------------------------------------------------------------------------------
# assertions


def check(cond, msg, *args):
    if not cond:
        raise Failure(msg % args if args else msg)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, expected, actual))


def status(resp, code, what):
    if resp.status != code:
        raise Failure("%s: expected status %d, got %s" % (what, code, resp.short()))


def json_answer(resp, code, what):
    """Status `code`, Content-Type application/json, strict JSON body; returns the value."""
    status(resp, code, what)
    ct = resp.header("content-type") or ""
    check(ct.lower().startswith("application/json"), "%s: Content-Type %r, expected application/json", what, ct)
    return resp.json()


def error_answer(resp, code, what):
    """An error answer: status `code`, JSON {"error": "..."}."""
    v = json_answer(resp, code, what)
    check(isinstance(v, dict) and isinstance(v.get("error"), str) and v["error"],
          "%s: error body should be {\"error\":\"...\"}, got %r", what, v)
    return v


def within(elapsed, lo, hi, what):
    check(lo <= elapsed <= hi, "%s took %.2fs, expected between %.1fs and %.1fs", what, elapsed, lo, hi)


# ----------------------------------------------------------------------------------------------
# the server


class _Drain(threading.Thread):
    """Reads one pipe of the server until EOF so it never blocks on a full pipe."""

    def __init__(self, pipe, name, sink, listening, verbose, regex):
        super().__init__(daemon=True, name="drain-" + name)
        self.pipe, self.tag, self.sink, self.listening, self.verbose = pipe, name, sink, listening, verbose
        self.regex = regex

    def run(self):
        try:
            for line in iter(self.pipe.readline, b""):
                self.sink.append(line)
                if self.listening[0] is None:
                    m = self.regex.search(line)
                    if m:
                        self.listening[0] = int(m.group(1))
                if self.verbose:
                    print("    %s| %s" % (self.tag, line.decode("utf-8", "replace").rstrip("\n")), flush=True)
        except (OSError, ValueError):
            pass
        finally:
            try:
                self.pipe.close()
            except OSError:
                pass


class Server:
    """`with t.server(**flags) as s:` starts the binary, waits for its `listening on` line and
    always stops it on exit (SIGTERM, up to 10 s, then SIGKILL), checking the exit status (0)
    and that stderr holds no sanitizer report. Flags: name without dashes, underscores for
    dashes: t.server(max_conns=5, workers=1). A value None removes a default flag."""

    def __init__(self, ctx, binary, tier, flags, expect_exit=0):
        self.ctx = ctx
        self.binary = binary
        self.tier = tier
        self.expect_exit = expect_exit
        f = dict(DEFAULT_FLAGS)
        if tier not in (None, "native"):
            f["--compat"] = tier
        for k, v in flags.items():
            f["--" + k.replace("_", "-")] = None if v is None else str(v)
        self.host = f.get("--bind") or "127.0.0.1"
        self.args = [binary]
        for k, v in f.items():
            if v is not None:
                self.args += [k, v]
        self.proc = None
        self.port = None
        self.out = []  # raw lines of stdout and stderr, in arrival order per pipe
        self.err = []
        self.clients = []
        self.checked = False
        self.problems = []
        self.term_sent_at = None

    # -- start / stop

    def start(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        try:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True, env=env)
        except OSError as e:
            raise StartFailure("cannot start %s: %s" % (self.binary, e))
        self.ctx.servers.append(self)
        listening = [None]
        rx = listen_re(self.host)
        self.threads = [_Drain(self.proc.stderr, "err", self.err, listening, self.ctx.verbose, rx),
                        _Drain(self.proc.stdout, "out", self.out, listening, self.ctx.verbose, rx)]
        for th in self.threads:
            th.start()
        deadline = time.monotonic() + START_TIMEOUT
        while listening[0] is None:
            if self.proc.poll() is not None:
                for th in self.threads:
                    th.join(2.0)
                if listening[0] is not None:
                    break
                text = self.stderr_text()
                self.checked = True
                if not SANITIZER_RE.search(text) and TIER_LACK_RE.search(text):
                    raise TierUnsupported(self.tail(3, oneline=True))
                raise StartFailure("server exited with status %s before listening (%s)"
                                   % (self.proc.returncode, " ".join(self.args)))
            if time.monotonic() > deadline:
                self._kill()
                self.checked = True
                raise StartFailure("no 'listening on %s:PORT' line within %.0fs (%s); killed"
                                   % (self.host, START_TIMEOUT, " ".join(self.args)))
            time.sleep(0.01)
        self.port = listening[0]
        return self

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def terminate(self):
        """Send SIGTERM now (for drain tests). Returns the time it was sent."""
        self.term_sent_at = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        return self.term_sent_at

    def wait_exit(self, timeout):
        """Wait up to `timeout` s for the process to exit; returns its status or None."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, close_clients=True):
        """Stop (if running) and check exit status and sanitizer output. Returns problems."""
        if self.checked:
            return self.problems
        self.checked = True
        if close_clients:
            self.close_clients()
        p = self.proc
        if p.poll() is None:
            if self.term_sent_at is None:
                self.term_sent_at = time.monotonic()
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
        if self.term_sent_at is None:  # it ended by itself (or was killed by the test)
            self.term_sent_at = time.monotonic()
        try:
            p.wait(max(0.1, self.term_sent_at + STOP_TIMEOUT - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.problems.append("server did not exit within %.0fs of SIGTERM; killed" % STOP_TIMEOUT)
            self._kill()
        for th in self.threads:
            th.join(3.0)
        rc = p.returncode
        if rc != self.expect_exit and not self.problems:
            self.problems.append("server exited with status %s, expected %s" % (rc, self.expect_exit))
        text = self.stderr_text()
        if SANITIZER_RE.search(text):
            self.problems.append("sanitizer report in server stderr")
        return self.problems

    def close_clients(self):
        for c in self.clients:
            c.close()
        self.clients = []

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, et, ev, tb):
        problems = self.stop()
        if problems:
            if et is None:
                raise Failure("; ".join(problems))
            self.ctx.notes.extend(problems)
        return False

    # -- output

    def stderr_text(self):
        return b"".join(self.err).decode("utf-8", "replace") + b"".join(self.out).decode("utf-8", "replace")

    def tail(self, n, oneline=False):
        lines = [l.decode("utf-8", "replace").rstrip("\n") for l in self.err]
        lines += [("stdout: " + l.decode("utf-8", "replace").rstrip("\n")) for l in self.out]
        lines = lines[-n:]
        return " / ".join(lines) if oneline else "\n".join(lines)

    def report(self, n=40, san=80):
        """The output worth showing for a failure: from the first sanitizer line on if there
        is one, else the last n lines."""
        lines = [l.decode("utf-8", "replace").rstrip("\n") for l in self.err]
        lines += [("stdout: " + l.decode("utf-8", "replace").rstrip("\n")) for l in self.out]
        for i, l in enumerate(lines):
            if SANITIZER_RE.search(l):
                if i <= 5:
                    return lines[:i + san]
                return lines[:3] + ["..."] + lines[i - 2:i + san]
        return lines[-n:]

    # -- clients tracked for cleanup

    def conn(self, timeout=5.0, rcvbuf=None):
        return client.Conn(self.port, host=self.host, timeout=timeout, rcvbuf=rcvbuf, tracker=self.clients)

    def sse(self, path, headers=None, rcvbuf=None, timeout=5.0):
        return client.SSEStream(self.port, path, headers=headers, rcvbuf=rcvbuf, timeout=timeout,
                                tracker=self.clients, host=self.host)

    def request(self, method, path, headers=None, body=None, chunks=None, timeout=5.0):
        return client.request(self.port, method, path, headers=headers, body=body, chunks=chunks,
                              timeout=timeout, host=self.host)

    def get(self, path, headers=None, timeout=5.0):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def get_json(self, path, code=200, headers=None, timeout=5.0):
        return json_answer(self.get(path, headers=headers, timeout=timeout), code, "GET " + path)

    def publish(self, ch, body, event=None, conn=None, headers=None):
        """POST /pub/ch; checks the answer's shape; returns the JSON answer."""
        hl = list(headers or [])
        if event is not None:
            hl.append(("X-Event", event))
        if isinstance(body, str):
            body = body.encode()
        if conn is not None:
            r = conn.request("POST", "/pub/" + ch, headers=hl, body=body)
        else:
            r = self.request("POST", "/pub/" + ch, headers=hl, body=body)
        v = json_answer(r, 200, "POST /pub/" + ch)
        check(isinstance(v, dict) and set(v) == {"channel", "id", "subscribers"},
              "publish answer should be {channel,id,subscribers}, got %r", v)
        eq(v["channel"], ch, "publish answer channel")
        check(isinstance(v["id"], int) and isinstance(v["subscribers"], int),
              "publish answer id/subscribers should be integers: %r", v)
        return v


class Ctx:
    """What a test gets: the tier, server factory, and cleanup bookkeeping."""

    def __init__(self, binary, tier, verbose=False):
        self.binary = binary
        self.tier = tier
        self.verbose = verbose
        self.servers = []
        self.notes = []
        self.procs = []  # other child processes (curl), killed at cleanup

    def server(self, expect_exit=0, **flags):
        return Server(self, self.binary, self.tier, flags, expect_exit=expect_exit)

    def spawn(self, args, **kw):
        p = subprocess.Popen(args, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        """Safety net after every test: stop whatever is still running. Returns the problems
        of servers that had not been stopped and checked yet."""
        problems = []
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        for s in self.servers:
            if not s.checked:
                try:
                    problems += s.stop()
                except BaseException:  # noqa: B902 - whatever happens, the process must go
                    s._kill()
            s._kill()
            s.close_clients()
        self.notes += problems
        return problems

