"""Small HTTP/1.1 and Server-Sent Events clients over raw sockets, for the integration tests.

Standard library only. Everything is bounded: every wait has a deadline and raises Timeout
when it passes, so a test can never hang on a silent server.

    Conn          one TCP connection: build/send requests (keep-alive, pipelining), read
                  responses (Content-Length, chunked, or close-delimited), check for EOF.
    SSEParser     incremental text/event-stream parser: Comment and Block items.
    SSEStream     one SSE subscription over its own socket (non-blocking), parsed as it arrives.
    pump_all      multiplex many SSEStreams with one selector until a condition holds.
"""

import json
import re
import select
import selectors
import socket
import time

HOST = "127.0.0.1"


class ClientError(AssertionError):
    """Base of the errors the client raises; a test reports them as failures."""


class Timeout(ClientError):
    pass


class Closed(ClientError):
    """The peer closed (FIN or RST) before the expected bytes arrived."""


class ProtocolError(ClientError):
    pass


def _left(deadline, what):
    r = deadline - time.monotonic()
    if r <= 0:
        raise Timeout("timed out waiting for %s" % what)
    return r


# ----------------------------------------------------------------------------------------------
# HTTP


def connect(host, port, timeout, rcvbuf=None):
    """A connected blocking TCP socket (IPv4 or IPv6 host), TCP_NODELAY, SO_RCVBUF before
    connect when given."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(timeout)
        s.connect((host, port))
    except Exception:
        s.close()
        raise
    return s


def build_request(method, path, headers=None, body=None, chunks=None, host=True):
    """Bytes of one HTTP/1.1 request.

    headers: list of (name, value) or dict. body: bytes sent with Content-Length (unless the
    headers already carry Content-Length or Transfer-Encoding). chunks: list of bytes sent
    chunked (Transfer-Encoding: chunked added). A POST without body gets Content-Length: 0.
    """
    hl = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {n.lower() for n, _ in hl}
    if host and "host" not in names:
        hl.insert(0, ("Host", HOST))
    if isinstance(body, str):
        body = body.encode()
    payload = b""
    if chunks is not None:
        if "transfer-encoding" not in names:
            hl.append(("Transfer-Encoding", "chunked"))
        for c in chunks:
            if isinstance(c, str):
                c = c.encode()
            if c:
                payload += b"%x\r\n%s\r\n" % (len(c), c)
        payload += b"0\r\n\r\n"
    elif body is not None:
        if "content-length" not in names and "transfer-encoding" not in names:
            hl.append(("Content-Length", str(len(body))))
        payload = body
    elif method in ("POST", "PUT") and "content-length" not in names and "transfer-encoding" not in names:
        hl.append(("Content-Length", "0"))
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % (n, v) for n, v in hl)
    return head.encode("latin-1") + b"\r\n" + payload


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.raw_head = raw_head
        self.close_delimited = False

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def header_tokens(self, name):
        """Comma-separated tokens of every header with that name, stripped, as a list."""
        name = name.lower()
        out = []
        for n, v in self.headers:
            if n.lower() == name:
                out += [t.strip() for t in v.split(",") if t.strip()]
        return out

    def json(self):
        """The body parsed as strict JSON (valid UTF-8, no raw control characters)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError("body is not valid UTF-8 (%s): %r" % (e, self.body[:300]))
        try:
            return json.loads(text)
        except ValueError as e:
            raise ProtocolError("body is not valid JSON (%s): %r" % (e, self.body[:300]))

    def short(self):
        return "%d %r" % (self.status, self.body[:300])

    def __repr__(self):
        return "<Response %s>" % self.short()


def parse_head(raw):
    """(version, status, reason, headers) from the bytes of a response head (without CRLFCRLF)."""
    try:
        text = raw.decode("latin-1")
    except Exception:  # pragma: no cover - latin-1 always decodes
        raise ProtocolError("undecodable head")
    lines = text.split("\r\n")
    m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise ProtocolError("bad status line %r" % lines[0][:200])
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        if ":" not in ln:
            raise ProtocolError("bad header line %r" % ln[:200])
        n, v = ln.split(":", 1)
        if n != n.strip() or not n:
            raise ProtocolError("bad header name %r" % n)
        headers.append((n, v.strip(" \t")))
    return m.group(1), int(m.group(2)), m.group(3) or "", headers


class Conn:
    """One client TCP connection with a receive buffer. Blocking socket, deadlines per call."""

    def __init__(self, port, host=HOST, timeout=5.0, rcvbuf=None, tracker=None):
        self.port = port
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.sock = connect(host, port, timeout, rcvbuf)
        if tracker is not None:
            tracker.append(self)

    # -- bytes

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def try_send(self, data):
        """Send, ignoring a peer that already closed (EPIPE/ECONNRESET). Returns True if sent."""
        try:
            self.send(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return False

    def _fill(self, deadline, what):
        """Receive more bytes into buf. Returns False on EOF or reset."""
        if self.eof:
            return False
        self.sock.settimeout(_left(deadline, what))
        try:
            d = self.sock.recv(262144)
        except socket.timeout:
            raise Timeout("timed out waiting for %s" % what)
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _take(self, n):
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def read_until(self, sep, deadline, limit=1 << 20, what="data"):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                return self._take(i + len(sep))
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes" % (sep, limit))
            if not self._fill(deadline, what):
                raise Closed("connection closed (%s) while waiting for %s; got %r"
                             % ("reset" if self.reset else "EOF", what, bytes(self.buf[:300])))

    def read_exact(self, n, deadline, what="body"):
        while len(self.buf) < n:
            if not self._fill(deadline, what):
                raise Closed("connection closed (%s) after %d of %d bytes of %s"
                             % ("reset" if self.reset else "EOF", len(self.buf), n, what))
        return self._take(n)

    # -- responses

    def read_response(self, timeout=None, allow_close_delimited=True):
        """Read one complete response (skipping 1xx). Raises Timeout / Closed / ProtocolError."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            raw = self.read_until(b"\r\n\r\n", deadline, limit=65536, what="response head")
            version, status, reason, headers = parse_head(raw[:-4])
            resp = Response(version, status, reason, headers, b"", raw)
            if 100 <= status < 200:
                continue
            break
        te = (resp.header("transfer-encoding") or "").lower()
        cl = resp.header("content-length")
        if status in (204, 304):
            return resp
        if "chunked" in te:
            body = bytearray()
            while True:
                line = self.read_until(b"\r\n", deadline, limit=4096, what="chunk size")
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("bad chunk size line %r" % line)
                if size == 0:
                    while self.read_until(b"\r\n", deadline, limit=65536, what="trailer") != b"\r\n":
                        pass
                    break
                body += self.read_exact(size, deadline, "chunk")
                if self.read_exact(2, deadline, "chunk CRLF") != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
            resp.body = bytes(body)
        elif cl is not None:
            try:
                n = int(cl)
            except ValueError:
                raise ProtocolError("bad Content-Length %r" % cl)
            resp.body = self.read_exact(n, deadline, "body of %d response" % status)
        else:
            if not allow_close_delimited:
                raise ProtocolError("response %d has neither Content-Length nor chunked" % status)
            while self._fill(deadline, "close-delimited body"):
                pass
            resp.body = self._take(len(self.buf))
            resp.close_delimited = True
        return resp

    def request(self, method, path, headers=None, body=None, chunks=None, timeout=None):
        self.send(build_request(method, path, headers, body, chunks))
        return self.read_response(timeout)

    def get(self, path, headers=None, timeout=None):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def post(self, path, body=b"", headers=None, timeout=None):
        return self.request("POST", path, headers=headers, body=body, timeout=timeout)

    # -- state of the connection

    def readable_within(self, wait):
        """True if bytes (or EOF) are ready within `wait` seconds."""
        if self.buf or self.eof:
            return True
        r, _, _ = select.select([self.sock], [], [], max(0.0, wait))
        return bool(r)

    def what_came(self, timeout=0.5):
        """For failure messages: the response (or EOF) that arrived, as text."""
        try:
            return repr(self.read_response(timeout))
        except ClientError as e:
            return "%s (buffer %r)" % (e, bytes(self.buf[:200]))

    def expect_silent(self, wait, what):
        """Fails if anything (a response, EOF) arrives within `wait` seconds."""
        if self.readable_within(wait):
            raise ProtocolError("%s: got %s" % (what, self.what_came()))

    def wait_closed(self, timeout):
        """Read until EOF/RST. Returns (closed, extra_bytes): closed is False if the
        connection is still open after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline, "close"):
                if len(self.buf) > (16 << 20):
                    del self.buf[: len(self.buf) - (1 << 20)]
        except Timeout:
            return False, bytes(self.buf)
        return True, bytes(self.buf)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(port, method, path, headers=None, body=None, chunks=None, timeout=5.0, tracker=None, host=HOST):
    """One request on a fresh connection, which is closed afterwards."""
    c = Conn(port, host=host, timeout=timeout, tracker=tracker)
    try:
        return c.request(method, path, headers=headers, body=body, chunks=chunks, timeout=timeout)
    finally:
        c.close()


# ----------------------------------------------------------------------------------------------
# Server-Sent Events


class Comment:
    kind = "comment"

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return "Comment(%r)" % self.text


class Block:
    """The field lines between two blank lines (one SSE event, or a retry-only block)."""

    kind = "block"

    def __init__(self, fields):
        self.fields = fields  # list of (name, value) in order, as received
        self.id = None
        self.event = None
        self.retry = None
        self.data_lines = []
        for n, v in fields:
            if n == "id":
                self.id = v
            elif n == "event":
                self.event = v
            elif n == "retry":
                self.retry = v
            elif n == "data":
                self.data_lines.append(v)

    @property
    def has_data(self):
        return any(n == "data" for n, _ in self.fields)

    @property
    def data(self):
        return "\n".join(self.data_lines)

    def field_names(self):
        return [n for n, _ in self.fields]

    def __repr__(self):
        return "Block(%r)" % (self.fields,)


_EOL = re.compile(rb"\r\n|\r|\n")


class SSEParser:
    """Incremental text/event-stream parser (WHATWG rules: CRLF, LF or CR ends a line; a line
    starting with ':' is a comment; one space after the colon is dropped; a blank line ends a
    block). Items come out in arrival order in self.items (list)."""

    def __init__(self):
        self.pending = b""
        self.fields = []
        self.items = []
        self.lines = []  # every line, raw (decoded), for diagnostics and exact checks
        self.first_line = True
        self.n_events = 0  # blocks with data so far

    def feed(self, data):
        buf = self.pending + data
        pos = 0
        while True:
            m = _EOL.search(buf, pos)
            if not m:
                break
            if m.group() == b"\r" and m.end() == len(buf):
                break  # maybe the CR of a CRLF whose LF has not arrived yet
            self._line(buf[pos:m.start()])
            pos = m.end()
        self.pending = buf[pos:]

    def finish(self):
        """At EOF: a trailing lone CR ends a line; an unterminated block is discarded."""
        if self.pending.endswith(b"\r"):
            self._line(self.pending[:-1])
        self.pending = b""

    def _line(self, raw):
        line = raw.decode("utf-8", errors="replace")
        if self.first_line:
            self.first_line = False
            if line.startswith("\ufeff"):
                line = line[1:]
        self.lines.append(line)
        if line == "":
            if self.fields:
                b = Block(self.fields)
                self.items.append(b)
                self.fields = []
                if b.has_data:
                    self.n_events += 1
            return
        if line.startswith(":"):
            text = line[1:]
            self.items.append(Comment(text[1:] if text.startswith(" ") else text))
            return
        if ":" in line:
            n, v = line.split(":", 1)
            if v.startswith(" "):
                v = v[1:]
        else:
            n, v = line, ""
        self.fields.append((n, v))


class _Dechunker:
    """Incremental decoder of a chunked body (for an SSE stream sent chunked)."""

    def __init__(self):
        self.buf = b""
        self.left = None  # bytes left in the current chunk, None: expecting a size line
        self.need_crlf = False
        self.done = False

    def feed(self, data):
        self.buf += data
        out = b""
        while not self.done:
            if self.need_crlf:
                if len(self.buf) < 2:
                    break
                if self.buf[:2] != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
                self.buf = self.buf[2:]
                self.need_crlf = False
            if self.left is None:
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                try:
                    self.left = int(self.buf[:i].split(b";")[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("bad chunk size %r" % self.buf[:i])
                self.buf = self.buf[i + 2:]
                if self.left == 0:
                    self.done = True
                    break
            take = self.buf[: self.left]
            out += take
            self.buf = self.buf[len(take):]
            self.left -= len(take)
            if self.left:
                break
            self.left = None
            self.need_crlf = True
        return out


class SSEStream:
    """One SSE subscription: connects, sends GET with Accept: text/event-stream, and parses
    the response head and then the event stream as bytes arrive. The socket is non-blocking;
    all waits go through select with deadlines."""

    def __init__(self, port, path, headers=None, rcvbuf=None, timeout=5.0, tracker=None,
                 accept="text/event-stream", host=HOST):
        self.path = path
        self.head = None  # Response once the head arrived (body: for non-200, the body so far)
        self.status = None
        self.raw = bytearray()  # bytes before the head was complete
        self.parser = SSEParser()
        self.dechunk = None
        self.eof = False
        self.reset = False
        self.body_bytes = 0
        self.pos = 0  # index of the next unconsumed item in parser.items
        s = connect(host, port, timeout, rcvbuf)
        try:
            hl = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
            if accept:
                hl.insert(0, ("Accept", accept))
            s.sendall(build_request("GET", path, hl))
            s.setblocking(False)
        except Exception:
            s.close()
            raise
        self.sock = s
        if tracker is not None:
            tracker.append(self)

    def fileno(self):
        return self.sock.fileno()

    @property
    def items(self):
        return self.parser.items

    def on_readable(self, maxbytes=262144):
        """One non-blocking recv. Returns False when the stream reached EOF/RST."""
        if self.eof:
            return False
        try:
            d = self.sock.recv(maxbytes)
        except (BlockingIOError, InterruptedError):
            return True
        except ConnectionResetError:
            self._at_eof(reset=True)
            return False
        if not d:
            self._at_eof()
            return False
        self._data(d)
        return True

    def _at_eof(self, reset=False):
        self.eof = True
        self.reset = reset
        self.parser.finish()

    def _data(self, d):
        if self.head is None:
            self.raw += d
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                if len(self.raw) > 65536:
                    raise ProtocolError("SSE response head over 64 KiB")
                return
            version, status, reason, headers = parse_head(bytes(self.raw[:i]))
            self.head = Response(version, status, reason, headers, b"", bytes(self.raw[: i + 4]))
            self.status = status
            d = bytes(self.raw[i + 4:])
            self.raw = bytearray()
            if "chunked" in (self.head.header("transfer-encoding") or "").lower():
                self.dechunk = _Dechunker()
        if self.dechunk is not None:
            d = self.dechunk.feed(d)
        self.body_bytes += len(d)
        if self.status != 200:
            self.head.body += d
            return
        self.parser.feed(d)

    def wait(self, cond, timeout, what):
        """Read until cond(self) is true; Timeout after `timeout` s; Closed if EOF first."""
        deadline = time.monotonic() + timeout
        while not cond(self):
            if self.eof:
                raise Closed("SSE %s: stream ended (%s) while waiting for %s; items so far: %r"
                             % (self.path, "reset" if self.reset else "EOF", what, self.items[-10:]))
            r, _, _ = select.select([self.sock], [], [], _left(deadline, what + " on SSE " + self.path))
            if r:
                self.on_readable()

    def read_head(self, timeout=5.0):
        self.wait(lambda s: s.head is not None, timeout, "response head")
        return self.head

    def next_item(self, timeout=5.0, what="an SSE item"):
        self.wait(lambda s: s.pos < len(s.items), timeout, what)
        it = self.items[self.pos]
        self.pos += 1
        return it

    def next_block(self, timeout=5.0, what="an SSE event"):
        """Next block, skipping comments."""
        deadline = time.monotonic() + timeout
        while True:
            it = self.next_item(max(0.0, deadline - time.monotonic()) or 0.000001, what)
            if it.kind == "block":
                return it

    def next_comment(self, timeout=5.0, what="an SSE comment"):
        deadline = time.monotonic() + timeout
        while True:
            it = self.next_item(max(0.0, deadline - time.monotonic()) or 0.000001, what)
            if it.kind == "comment":
                return it

    @property
    def n_events(self):
        return self.parser.n_events

    def all_events(self):
        """Every data block received so far (consumed or not)."""
        return [it for it in self.items if it.kind == "block" and it.has_data]

    def has_preamble(self):
        return any(it.kind == "block" for it in self.items)

    def settled(self):
        """The preamble arrived, or it never will (error status, EOF)."""
        return self.eof or (self.status is not None and self.status != 200) or self.has_preamble()

    def preamble(self, timeout=5.0):
        """Wait for the head (200, text/event-stream) and the first block, which must be
        retry-only; only comments may come before it. Returns that block."""
        self.read_head(timeout)
        if self.status != 200:
            try:
                self.wait(lambda s: s.eof, 0.5, "error body")
            except ClientError:
                pass
            raise ProtocolError("SSE %s: status %d, body %r" % (self.path, self.status, self.head.body[:300]))
        b = self.next_block(timeout, "the retry: preamble")
        if b.retry is None or b.has_data or b.id is not None:
            raise ProtocolError("SSE %s: first block is not a retry: preamble: %r (lines %r)"
                                % (self.path, b, self.parser.lines[:10]))
        return b

    def events(self, n, timeout=5.0):
        """The next n blocks that carry data (skipping comments and data-less blocks)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("SSE %s: got %d of %d events: %r" % (self.path, len(out), n, out))
            b = self.next_block(left, "event %d of %d" % (len(out) + 1, n))
            if b.has_data:
                out.append(b)
        return out

    def pending_events(self):
        """Data blocks parsed but not consumed yet (consumes them)."""
        out = []
        while self.pos < len(self.items):
            it = self.items[self.pos]
            self.pos += 1
            if it.kind == "block" and it.has_data:
                out.append(it)
        return out

    def quiet_for(self, wait):
        """Read for `wait` seconds; return the data blocks that arrived (consumed)."""
        deadline = time.monotonic() + wait
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self.on_readable()
        return self.pending_events()

    def read_to_eof(self, timeout, stall=None):
        """Read until EOF/RST. Returns True on EOF within timeout, False otherwise. `stall`:
        give up (False) if no byte arrives for that many seconds."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while not self.eof:
            now = time.monotonic()
            if now >= deadline or (stall is not None and now - last >= stall):
                return False
            r, _, _ = select.select([self.sock], [], [], min(deadline - now, 0.2))
            if r:
                before = self.body_bytes
                self.on_readable()
                if self.body_bytes != before:
                    last = time.monotonic()
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pump_all(streams, cond, timeout, what):
    """Read every stream as bytes arrive until cond() is true. Timeout after `timeout` s.
    Streams at EOF are dropped from the selector (cond decides whether that is a failure)."""
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    try:
        for s in streams:
            if not s.eof:
                sel.register(s.sock, selectors.EVENT_READ, s)
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("timed out waiting for %s" % what)
            if not sel.get_map():
                raise Closed("every stream ended while waiting for %s" % what)
            for key, _ in sel.select(min(left, 0.5)):
                s = key.data
                if not s.on_readable():
                    sel.unregister(s.sock)
    finally:
        sel.close()


def drain_available(streams, max_rounds=1000):
    """Read whatever is already there on every stream, without waiting."""
    live = [s for s in streams if not s.eof]
    for _ in range(max_rounds):
        if not live:
            return
        r, _, _ = select.select(live, [], [], 0)
        if not r:
            return
        for s in r:
            s.on_readable()
        live = [s for s in live if not s.eof]


# ----------------------------------------------------------------------------------------------
# several channels


def parse_multi_id(text):
    """The `id:` of an event on a several-channel SSE stream, `b:18,a:5,c:0`, as a list of
    (channel, id) pairs in order. A channel name may itself hold ':' (the id is after the last
    one). Raises ProtocolError if it is not of that form."""
    if text is None:
        raise ProtocolError("event without id: on a several-channel stream")
    pairs = []
    for item in text.split(","):
        ch, sep, n = item.rpartition(":")
        if not sep or not ch or not n.isdigit() or (len(n) > 1 and n[0] == "0"):
            raise ProtocolError("id %r: %r is not CHANNEL:ID" % (text, item))
        pairs.append((ch, int(n)))
    return pairs
