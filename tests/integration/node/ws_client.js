#!/usr/bin/env node
// A WebSocket client driven by the integration tests (test_ws_clients.py), built on the `ws`
// package (Debian's node-ws, installed by `make deps`; an npm-installed `ws` is used first if
// there is one).
//
//   node ws_client.js URL PROTOCOLS DEFLATE [CA]
//     PROTOCOLS  comma-separated subprotocols to offer, or "-" for none
//     DEFLATE    "on": offer permessage-deflate (ws's default), "off": offer nothing
//     CA         for wss://: a PEM file of the CA to trust (else the system's)
//
// Events go to stdout, one JSON object a line:
//   {"ev":"open","protocol":"...","extensions":"...","headers":{...}}
//   {"ev":"message","binary":false,"data":"..."}        (binary data in base64)
//   {"ev":"pong","data":"..."}   {"ev":"close","code":1000,"reason":"..."}   {"ev":"error","message":"..."}
// Commands come on stdin, one JSON object a line:
//   {"op":"send","data":"...","binary":false}   {"op":"ping","data":"..."}
//   {"op":"close","code":1000,"reason":"bye"}
// The process exits 0 after the close event, 2 on an error, 3 when stdin ends first.
'use strict';

let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  WebSocket = require('/usr/share/nodejs/ws');
}
const readline = require('readline');

const [url, protos, deflate, ca] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const ws = new WebSocket(url, protos && protos !== '-' ? protos.split(',') : [], {
  perMessageDeflate: deflate === 'on',
  handshakeTimeout: 5000,
  ...(ca ? { ca: require('fs').readFileSync(ca) } : {}),
});
let headers = {};
ws.on('upgrade', (res) => { headers = res.headers; });
ws.on('open', () => out({ ev: 'open', protocol: ws.protocol, extensions: ws.extensions, headers }));
ws.on('message', (data, isBinary) =>
  out({ ev: 'message', binary: isBinary, data: isBinary ? data.toString('base64') : data.toString('utf8') }));
ws.on('pong', (data) => out({ ev: 'pong', data: data.toString('utf8') }));
ws.on('unexpected-response', (req, res) => {
  out({ ev: 'error', message: 'unexpected response ' + res.statusCode });
  process.exit(2);
});
ws.on('error', (err) => { out({ ev: 'error', message: String(err && err.message) }); process.exit(2); });
ws.on('close', (code, reason) => {
  out({ ev: 'close', code, reason: reason.toString('utf8') });
  process.exit(0);
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const c = JSON.parse(line);
  if (c.op === 'send') ws.send(c.binary ? Buffer.from(c.data, 'base64') : c.data, { binary: !!c.binary });
  else if (c.op === 'ping') ws.ping(c.data);
  else if (c.op === 'close') ws.close(c.code, c.reason);
});
rl.on('close', () => { setTimeout(() => process.exit(3), 100); });
setTimeout(() => { out({ ev: 'error', message: 'ws_client.js: 20 s limit' }); process.exit(4); }, 20000).unref();
