"""POST /pub/{ch}: the answer, gap-free ids, bodies by Content-Length and chunked, X-Event."""

import time

from harness import check, eq, json_answer, test


@test
def publish_answer(t):
    """200 JSON {"channel":"a","id":1,"subscribers":0}; ids 1,2,3 per channel, no gaps."""
    with t.server() as s:
        c = s.conn()
        r = c.post("/pub/a", b"hello")
        v = json_answer(r, 200, "first POST /pub/a")
        eq(v, {"channel": "a", "id": 1, "subscribers": 0}, "first publish answer")
        # same keep-alive connection, then fresh connections
        eq(s.publish("a", "two", conn=c)["id"], 2, "second id")
        eq(s.publish("a", "three")["id"], 3, "third id (new connection)")
        # another channel has its own counter
        eq(s.publish("b.x:y-Z_9", "other"), {"channel": "b.x:y-Z_9", "id": 1, "subscribers": 0},
           "first publish on another channel")
        ids = [s.publish("a", "m%d" % i, conn=c)["id"] for i in range(4, 21)]
        eq(ids, list(range(4, 21)), "ids 4..20 on one keep-alive connection")
        # an empty body is a message too
        eq(s.publish("a", b"")["id"], 21, "id of an empty message")
        v = s.get_json("/poll/a?since=20")
        eq([(m["id"], m["data"]) for m in v["messages"]], [(21, "")], "empty message in poll")


@test
def publish_chunked_and_event(t):
    """A chunked body (sent in pieces) is the message; X-Event becomes the event field."""
    with t.server() as s:
        c = s.conn()
        head = (b"POST /pub/ch HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                b"X-Event: price\r\n\r\n")
        c.send(head)
        for piece in (b"3\r\nhel", b"\r\n", b"6\r\nlo wor\r\n", b"2;ext=1\r\nld\r\n", b"0\r\n", b"\r\n"):
            time.sleep(0.03)
            c.send(piece)
        v = json_answer(c.read_response(), 200, "chunked POST /pub/ch")
        eq(v, {"channel": "ch", "id": 1, "subscribers": 0}, "chunked publish answer")
        # Content-Length body arriving in two parts, on the same connection
        c.send(b"POST /pub/ch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n01234")
        time.sleep(0.05)
        c.send(b"56789")
        eq(json_answer(c.read_response(), 200, "split body")["id"], 2, "id after split body")
        s.publish("ch", '{"p":3}', event="price")
        v = s.get_json("/poll/ch?since=0")
        eq(v["messages"], [
            {"id": 1, "event": "price", "data": "hello world"},
            {"id": 2, "data": "0123456789"},
            {"id": 3, "event": "price", "data": '{"p":3}'},
        ], "poll after chunked / split / X-Event publishes")
        eq(v["last_id"], 3, "last_id")
        # an SSE subscriber sees the event name
        sub = s.sse("/sub/ch?since=0")
        sub.preamble()
        evs = sub.events(3)
        eq([(e.id, e.event, e.data) for e in evs],
           [("1", "price", "hello world"), ("2", None, "0123456789"), ("3", "price", '{"p":3}')],
           "SSE replay (id, event, data)")
        check(len(s.get_json("/poll/ch")["messages"]) == 3, "poll without since returns all 3")


@test
def pipelining(t):
    """Requests sent together are answered in order: poll, pub, poll in one send; 404 then a
    poll; a long poll holds back the answer pipelined behind it; 50 publishes in one send."""
    from client import build_request
    with t.server(poll_timeout=5) as s:
        s.publish("p", "first")
        c = s.conn()
        c.send(build_request("GET", "/poll/p?since=0") + build_request("POST", "/pub/p", body=b"second")
               + build_request("GET", "/poll/p?since=0"))
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        v1 = json_answer(r1, 200, "pipelined poll 1")
        eq([m["data"] for m in v1["messages"]], ["first"], "pipelined poll before the publish")
        eq(json_answer(r2, 200, "pipelined publish"), {"channel": "p", "id": 2, "subscribers": 0},
           "pipelined publish answer")
        v3 = json_answer(r3, 200, "pipelined poll 2")
        eq([m["data"] for m in v3["messages"]], ["first", "second"], "pipelined poll after the publish")
        # 404 keeps the connection, and the pipelined request behind it is answered
        c.send(build_request("GET", "/nope") + build_request("GET", "/poll/p?since=1"))
        eq(c.read_response().status, 404, "pipelined 404")
        eq([m["id"] for m in json_answer(c.read_response(), 200, "after 404")["messages"]], [2],
           "pipelined poll after a 404")
        # a long poll answers before the request pipelined behind it
        c.send(build_request("GET", "/sub/p?since=2") + build_request("GET", "/poll/p?since=0"))
        c.expect_silent(0.3, "something answered while the long poll waits")
        s.publish("p", "third")
        v = json_answer(c.read_response(timeout=2), 200, "pipelined long poll")
        eq([m["data"] for m in v["messages"]], ["third"], "long poll answered first")
        v = json_answer(c.read_response(timeout=2), 200, "poll pipelined behind the long poll")
        eq(len(v["messages"]), 3, "poll behind the long poll")
        # 50 publishes in one send
        c.send(b"".join(build_request("POST", "/pub/p", body=b"n%d" % i) for i in range(50)))
        ids = [json_answer(c.read_response(), 200, "pipelined publish %d" % i)["id"] for i in range(50)]
        eq(ids, list(range(4, 54)), "ids of 50 pipelined publishes")
        v = json_answer(c.get("/poll/p?since=3"), 200, "poll after 50 pipelined publishes")
        eq([m["data"] for m in v["messages"]], ["n%d" % i for i in range(50)], "50 pipelined messages in order")
