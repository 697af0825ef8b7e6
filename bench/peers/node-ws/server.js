#!/usr/bin/node
// bench/peers/node-ws/server.js: a Node.js push server on the `ws` package,
// ringcast's second peer under ringload (bench/run with PEER=node-ws).
//
// The way a tutorial writes it, with what ringload needs to check it:
//   GET  /sub/{ch}   upgrades to WebSocket (RFC 6455, `ws`), subscriber of {ch}.
//                    Offers of the `ringcast.json` subprotocol are accepted:
//                    ringload asks for it and requires it in the 101.
//   POST /pub/{ch}   publishes the body to every subscriber of {ch} as one
//                    text frame {"id":N,"data":"BODY"} (ringcast.json's
//                    shape: N is the channel's own counter, 1, 2, 3, ... with
//                    no gaps, which ringload checks in step with the
//                    publisher's sequence); answers 200 with a JSON
//                    {"id":N,"subscribers":K} and a Content-Length (ringload
//                    frames publish answers by Content-Length).
//   anything else    404.
// No history, no resume, no SSE, no long or short polling, no
// permessage-deflate, no heartbeat: ringload's WebSocket subscribers need
// none of them (it answers pings, the server sends none).
//
// One process, one thread: a Node cluster cannot share channels between its
// workers without IPC (each publish would have to be relayed to every
// worker), which is no longer the simple server this peer stands for. So it
// uses at most 1 CPU where ringcast and nginx run 2 workers: say so beside
// every figure.
//
// Usage: node server.js [--port N] [--bind ADDR]   (port 0: any free port)
// Prints "listening on ADDR:PORT" on stderr once it accepts connections.
// SIGTERM / SIGINT: closes the listener and every connection, exits 0.
'use strict';

const http = require('http');
// Debian's node-ws lives in /usr/share/nodejs, which this node (NodeSource's
// build) does not search by default.
let WebSocket;
try {
    WebSocket = require('ws');
} catch (e) {
    WebSocket = require('/usr/share/nodejs/ws');
}

function arg(name, dflt) {
    const i = process.argv.indexOf(name);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '0'));
const bind = arg('--bind', '127.0.0.1');

// Channel name -> { subs: Set of WebSocket, last: last id given }.
const channels = new Map();
const CHANNEL = /^\/(pub|sub)\/([A-Za-z0-9_.:-]{1,128})$/;

function channel(name) {
    let c = channels.get(name);
    if (!c) {
        c = { subs: new Set(), last: 0 };
        channels.set(name, c);
    }
    return c;
}

function answer(res, code, body) {
    const b = Buffer.from(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': b.length });
    res.end(b);
}

const server = http.createServer((req, res) => {
    const m = CHANNEL.exec(req.url);
    if (!m || m[1] !== 'pub' || req.method !== 'POST') {
        answer(res, 404, '{"error":"not found"}\n');
        return;
    }
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
        const c = channel(m[2]);
        const id = ++c.last;
        // Encoded once: the same Buffer goes to every subscriber.
        const frame = Buffer.from(JSON.stringify({ id, data: Buffer.concat(parts).toString() }));
        let n = 0;
        for (const ws of c.subs) {
            if (ws.readyState === WebSocket.OPEN) {
                ws.send(frame, { binary: false });
                n++;
            }
        }
        answer(res, 200, `{"id":${id},"subscribers":${n}}\n`);
    });
});
// ringload publishes over one keep-alive connection for the whole run.
server.keepAliveTimeout = 60000;
server.requestTimeout = 0;
server.headersTimeout = 60000;

const wss = new WebSocket.Server({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has('ringcast.json') ? 'ringcast.json' : false),
});

server.on('upgrade', (req, socket, head) => {
    const m = CHANNEL.exec(req.url);
    if (!m || m[1] !== 'sub') {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
        // Runs right after the 101 is written, in the same tick: a publish
        // read after the client saw its 101 finds it in the set.
        const c = channel(m[2]);
        c.subs.add(ws);
        ws.on('close', () => c.subs.delete(ws));
        ws.on('error', () => c.subs.delete(ws));
    });
});

server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
});

server.listen(port, bind, () => {
    const a = server.address();
    process.stderr.write(`node-ws: listening on ${a.address}:${a.port} (node ${process.version}, ws 8, 1 process)\n`);
});

function stop() {
    server.close();
    for (const c of channels.values()) for (const ws of c.subs) ws.terminate();
    process.stderr.write('node-ws: stopped\n');
    process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
