"""TLS on the TLS port (--tls-cert, --tls-key, --tls-port): curl over https for publish, SSE,
long poll and short poll; python3-websockets and Node's ws over wss; clients refuse a wrong
host name and an expired certificate; a plain-HTTP request, a garbage ClientHello and a stalled
handshake are each closed cleanly (and counted) while a TLS subscriber goes on receiving; bad
certificate or key files stop the server at start with a message naming the file.

Throwaway certificates are made once per run with Debian's openssl tool: a root CA, a leaf for
localhost and 127.0.0.1 signed by it, an expired leaf, and a key that matches nothing."""

import asyncio
import functools
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import time

from harness import Failure, check, eq, json_answer, test
from test_ws_clients import NodeClient, _import_websockets

CERTS_SCRIPT = r"""
set -e
cd "$1"
q() { "$@" >/dev/null 2>&1; }
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
  -out root.pem -subj /CN=ringcast-it-root -days 2 -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign
q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
  -out leaf.csr -subj /CN=localhost
q openssl x509 -req -in leaf.csr -CA root.pem -CAkey root.key -CAcreateserial -out leaf.pem \
  -days 2 -extfile leaf.ext
touch index.txt; echo 01 > serial
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' > ca.cnf
q openssl ca -batch -config ca.cnf -cert root.pem -keyfile root.key -in leaf.csr \
  -startdate 20200101000000Z -enddate 20200102000000Z -extfile leaf.ext -out expired.pem -notext
q openssl ecparam -name prime256v1 -genkey -noout -out other.sec1
q openssl pkcs8 -topk8 -nocrypt -in other.sec1 -out other.key
"""


@functools.lru_cache(maxsize=None)
def certs():
    """The directory with root.pem, leaf.pem/leaf.key, expired.pem (same key), other.key."""
    d = tempfile.mkdtemp(prefix="ringcast-it-tls.")
    try:
        subprocess.run(["bash", "-c", CERTS_SCRIPT, "certs", d], check=True, timeout=60,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except (OSError, subprocess.SubprocessError) as e:
        raise Failure("the openssl tool could not make test certificates (make deps installs "
                      "openssl): %s" % e)
    return d


def cert(name):
    return os.path.join(certs(), name)


def tls_server(t, leaf="leaf.pem", **flags):
    return t.server(tls_cert=cert(leaf), tls_key=cert("leaf.key"), tls_port=0, **flags)


def tls_port(s):
    m = re.search(r"TLS \(https, wss\) on [^ ]*:(\d+)", s.stderr_text())
    check(m is not None, "the server did not say which port speaks TLS:\n%s" % s.tail(10))
    return int(m.group(1))


def curl(t, port, path, *args, host="localhost", timeout=10):
    """curl over https to host:port (resolved to 127.0.0.1), trusting the test root."""
    p = t.spawn(["curl", "-sS", "--cacert", cert("root.pem"), "--resolve",
                 "%s:%d:127.0.0.1" % (host, port), "https://%s:%d%s" % (host, port, path)]
                + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def stats(s):
    return json_answer(s.get("/stats"), 200, "GET /stats")["total"]


def sse_over_https(t, s, port, ch, seconds):
    """curl streaming /sub/ch over https for `seconds`; returns once the server counts one more
    SSE subscriber (or after 5 s: the caller checks)."""
    before = stats(s)["sse_subscribers"]
    p = t.spawn(["curl", "-sSN", "--max-time", str(seconds), "--cacert", cert("root.pem"),
                 "--resolve", "localhost:%d:127.0.0.1" % port, "-H", "Accept: text/event-stream",
                 "https://localhost:%d/sub/%s" % (port, ch)], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while stats(s)["sse_subscribers"] <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    return p


@test
def tls_curl_every_transport(t):
    """curl --cacert over https: publish, an SSE stream, a long poll (with since, and waiting),
    a short poll and /stats; every handshake counted, no failure."""
    with tls_server(t) as s:
        port = tls_port(s)
        sse = sse_over_https(t, s, port, "tls", 4)
        eq(stats(s)["sse_subscribers"], 1, "the SSE subscriber over https")
        lp = t.spawn(["curl", "-sS", "--max-time", "5", "--cacert", cert("root.pem"), "--resolve",
                      "localhost:%d:127.0.0.1" % port, "https://localhost:%d/sub/tls" % port],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while stats(s)["longpoll_waiting"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        for k, body in enumerate(["one over tls", "two over tls", "x" * 40000], 1):
            rc, out, err = curl(t, port, "/pub/tls", "-d", body)
            eq(rc, 0, "curl publish %d: %s" % (k, err))
            eq(json.loads(out)["id"], k, "publish %d answer over https" % k)
        out, err = lp.communicate(timeout=10)
        eq(lp.returncode, 0, "long poll over https: %s" % err.decode())
        eq([m["data"] for m in json.loads(out)["messages"]][:1], ["one over tls"],
           "a waiting long poll over https: the next message")
        rc, out, err = curl(t, port, "/sub/tls?since=1")
        eq(rc, 0, "long poll with since over https: " + err)
        eq([m["id"] for m in json.loads(out)["messages"]], [2, 3],
           "long poll with since=1 over https: what followed id 1")
        rc, out, err = curl(t, port, "/poll/tls")
        eq(rc, 0, "short poll over https: " + err)
        eq([m["id"] for m in json.loads(out)["messages"]], [1, 2, 3], "short poll ids over https")
        out, err = sse.communicate(timeout=10)
        text = out.decode()
        for body in ("one over tls", "two over tls", "x" * 40000):
            check("data: %s\n" % body in text, "the SSE stream over https lacks %r:\n%s", body[:20],
                  text[:500])
        st = stats(s)
        check(st["tls_handshakes"] >= 7, "handshakes counted: %r", st["tls_handshakes"])
        fails = {k: v for k, v in st.items() if k.startswith("tls_fail_") and v}
        eq(fails, {}, "TLS failures")


async def _wss_python(s, port, websockets, compression):
    ctx = ssl.create_default_context(cafile=cert("root.pem"))
    what = "python3-websockets over wss (compression=%r)" % compression
    ws = await asyncio.wait_for(websockets.client.connect(
        "wss://localhost:%d/sub/wss" % port, ssl=ctx, compression=compression, ping_interval=None,
        subprotocols=["ringcast.json"], max_size=1 << 20, open_timeout=5), 5)
    try:
        eq(ws.subprotocol, "ringcast.json", what + ": subprotocol")
        v = await asyncio.to_thread(s.publish, "wss", "hello wss " + "y" * 3000)
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
        eq((m["id"], m["data"]), (v["id"], "hello wss " + "y" * 3000), what + ": published message")
        sse = s.sse("/sub/wss")
        await asyncio.to_thread(sse.preamble)
        await asyncio.wait_for(ws.send("from the wss client"), 5)
        evs = await asyncio.to_thread(sse.events, 1, 5.0)
        eq(evs[0].data, "from the wss client", what + ": its message reached a plain SSE subscriber")
        pong = await asyncio.wait_for(ws.ping(b"tls-ping"), 5)
        await asyncio.wait_for(pong, 3)
        await asyncio.wait_for(ws.close(1000, "done"), 5)
        eq(ws.close_code, 1000, what + ": close code")
    finally:
        await ws.close()


@test
def tls_wss_python(t):
    """python3-websockets over wss (certificate checked against the test root), with and
    without permessage-deflate: receive, send (a plain SSE subscriber gets it), ping, close."""
    websockets = _import_websockets()
    with tls_server(t) as s:
        port = tls_port(s)
        for compression in ("deflate", None):
            asyncio.run(_wss_python(s, port, websockets, compression))
        st = stats(s)
        eq((st["ws_protocol_errors"], st["tls_fail_other"], st["tls_fail_record"]), (0, 0, 0),
           "WebSocket protocol errors, TLS failures")


@test
def tls_wss_node(t):
    """Node's ws over wss with the test root as its CA: receive a published message, send one,
    close 1000."""
    with tls_server(t) as s:
        port = tls_port(s)
        n = NodeClient(t, "wss://localhost:%d/sub/nodetls" % port, None, "on", ca=cert("root.pem"))
        n.expect("open", 5, "the open event over wss")
        s.publish("nodetls", "to node over tls")
        eq(n.message(5, "the published message"), (False, b"to node over tls"), "node over wss")
        sse = s.sse("/sub/nodetls")
        sse.preamble()
        n.cmd(op="send", data="from node over tls")
        eq(sse.events(1, 5.0)[0].data, "from node over tls", "node's message via SSE")
        eq(n.message(5, "its own message back"), (False, b"from node over tls"), "node's echo")
        n.cmd(op="close", code=1000, reason="bye")
        eq(n.expect("close", 5).get("code"), 1000, "close code node saw")


def _python_handshake(port, host):
    ctx = ssl.create_default_context(cafile=cert("root.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host):
            pass


@test
def tls_clients_refuse_bad_certificates(t):
    """A name the certificate does not cover, and an expired certificate (which the server
    starts with, warning), are refused by curl and by Python's ssl; the right name passes."""
    with tls_server(t) as s:
        port = tls_port(s)
        rc, out, err = curl(t, port, "/stats", host="wrong.test")
        check(rc != 0, "curl accepted a certificate for the wrong name: %r", out[:100])
        try:
            _python_handshake(port, "wrong.test")
            raise Failure("Python's ssl accepted a certificate for the wrong name")
        except ssl.SSLCertVerificationError:
            pass
        _python_handshake(port, "localhost")
    with tls_server(t, leaf="expired.pem") as s:
        port = tls_port(s)
        check("expired" in s.stderr_text().lower() or "not valid" in s.stderr_text().lower(),
              "the server should warn about its expired certificate:\n%s", s.tail(8))
        rc, out, err = curl(t, port, "/stats")
        check(rc != 0, "curl accepted an expired certificate: %r", out[:100])
        check("expired" in err.lower(), "curl should say the certificate expired: %r", err)
        try:
            _python_handshake(port, "localhost")
            raise Failure("Python's ssl accepted an expired certificate")
        except ssl.SSLCertVerificationError as e:
            check("expired" in str(e).lower(), "Python's reason: %s" % e)


def _read_until_closed(sock, limit=5.0):
    """Everything the server sends until it closes; raises if it does not close in time."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got
        if not d:
            return got
        got += d
    raise Failure("the server did not close the connection within %.0fs (got %r)" % (limit, got[:80]))


@test
def tls_bad_clients_closed_cleanly(t):
    """On the TLS port: a plain HTTP request gets a 400 saying the port speaks TLS, garbage
    that looks like a handshake record is closed, and a client that stalls mid-handshake is
    closed at --tls-handshake-timeout (1 s); each is counted, and an SSE subscriber over TLS
    keeps receiving throughout."""
    with tls_server(t, tls_handshake_timeout=1) as s:
        port = tls_port(s)
        sse = sse_over_https(t, s, port, "steady", 6)
        s.publish("steady", "before")
        stalled = socket.create_connection(("127.0.0.1", port), timeout=5)
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
            got = _read_until_closed(c)
            check(got.startswith(b"HTTP/1.1 400") and b"TLS" in got,
                  "plain HTTP on the TLS port: %r", got[:200])
        s.publish("steady", "during")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"\x16\x03\x01\x00\x10" + b"\xde\xad\xbe\xef" * 4 + b"more junk")
            _read_until_closed(c)
        _read_until_closed(stalled, 4.0)
        took = time.monotonic() - start
        stalled.close()
        check(0.8 <= took <= 3.5, "the stalled handshake was closed after %.2fs (timeout 1 s)", took)
        s.publish("steady", "after")
        out, err = sse.communicate(timeout=10)
        text = out.decode()
        for body in ("before", "during", "after"):
            check("data: %s\n" % body in text, "the TLS subscriber missed %r:\n%s", body, text)
        st = stats(s)
        check(st["tls_fail_plain_http"] == 1, "plain HTTP counted: %r", st["tls_fail_plain_http"])
        check(st["tls_fail_not_tls"] + st["tls_fail_bad_hello"] + st["tls_fail_other"] >= 1,
              "garbage counted: %r", {k: v for k, v in st.items() if k.startswith("tls_fail")})
        eq(st["tls_fail_timeout"], 1, "stalled handshakes counted")


@test(per_tier=False)
def tls_start_errors(t):
    """Certificate and key problems stop the server at start (exit 2) with a message naming
    the file and what is wrong."""
    missing = os.path.join(certs(), "nope.pem")
    cases = [
        (["--tls-cert", missing, "--tls-key", cert("leaf.key")], "nope.pem"),
        (["--tls-cert", cert("leaf.pem"), "--tls-key", cert("other.key")], "other.key"),
        (["--tls-cert", cert("leaf.key"), "--tls-key", cert("leaf.key")], "leaf.key"),
        (["--tls-cert", cert("leaf.pem")], "--tls-key"),
    ]
    for args, named in cases:
        p = subprocess.run([t.binary, "--port", "0", "--bind", "127.0.0.1", "--tls-port", "0"] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        err = p.stderr.decode("utf-8", "replace")
        eq(p.returncode, 2, "exit status for %r: %s" % (args, err))
        check(named in err, "the message for %r should name %s: %r", args, named, err)


def _tls_read_to_eof(sock, limit=5.0):
    """Reads until the peer ends the TLS stream; raises ssl.SSLEOFError if the TCP connection
    ended without a close_notify (suppress_ragged_eofs is off)."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise Failure("the server did not close within %.0f s; got %r" % (limit, data[-200:]))


@test
def tls_close_notify(t):
    """The server ends a TLS connection with close_notify before its TCP close (RFC 8446 6.1),
    so a client can tell the end from a cut: after a `Connection: close` answer, and for an SSE
    stream ended by the server's shutdown drain."""
    ctx = ssl.create_default_context(cafile=cert("root.pem"))
    # Python may ask OpenSSL to take a bare EOF as a clean end: not here.
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    with tls_server(t) as s:
        port = tls_port(s)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost",
                                suppress_ragged_eofs=False) as c:
            c.sendall(b"GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            try:
                data = _tls_read_to_eof(c)
            except ssl.SSLEOFError as e:
                raise Failure("Connection: close answer ended without close_notify: %s" % e)
            check(data.startswith(b"HTTP/1.1 200"), "the answer: %r", data[:100])
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        c = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        try:
            c.sendall(b"GET /sub/bye HTTP/1.1\r\nHost: localhost\r\n"
                      b"Accept: text/event-stream\r\n\r\n")
            head = c.recv(65536)
            check(head.startswith(b"HTTP/1.1 200"), "the SSE answer: %r", head[:100])
            s.terminate()
            try:
                _tls_read_to_eof(c, limit=10)
            except ssl.SSLEOFError as e:
                raise Failure("an SSE stream ended by the drain had no close_notify: %s" % e)
        finally:
            c.close()
        eq(s.wait_exit(10), 0, "exit status after SIGTERM")
