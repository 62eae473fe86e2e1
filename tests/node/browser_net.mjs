// Network pieces for the browser tests: a recording TCP proxy the test can cut and hold (to make
// a browser reconnect, and to see what went over the wire), a parser of the WebSocket frames a
// server sent, and a static page server (a page on another origin). Loopback only.
import net from 'node:net';
import http from 'node:http';

// A TCP proxy on 127.0.0.1 to 127.0.0.1:targetPort. Each connection records the bytes each way
// (`up`: browser to server, `down`: server to browser). cutAll() destroys every connection;
// hold() makes new connections wait (accepted, not read, not forwarded) until release().
export async function startRecordingProxy(targetPort) {
  const sockets = new Set();
  const conns = [];
  const held = [];
  let holding = false;
  const link = (client) => {
    const conn = { up: [], down: [] };
    conns.push(conn);
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client); sockets.add(upstream);
    client.on('data', (b) => { conn.up.push(b); upstream.write(b); });
    upstream.on('data', (b) => { conn.down.push(b); client.write(b); });
    const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', drop); upstream.on('error', drop); client.on('close', drop); upstream.on('close', drop);
    client.resume();
  };
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    if (holding) {
      held.push(client);
      sockets.add(client);
      client.on('error', () => { client.destroy(); sockets.delete(client); });
    } else {
      link(client);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    conns,
    // The requests' heads sent through the proxy, in order: every request of each connection,
    // keep-alive ones included (bodies skipped by Content-Length; nothing read past an upgrade).
    requestHeads() {
      const heads = [];
      for (const c of conns) {
        const text = Buffer.concat(c.up).toString('latin1');
        let at = 0;
        while (at < text.length) {
          const end = text.indexOf('\r\n\r\n', at);
          if (end < 0) break;
          const head = text.slice(at, end + 2);
          if (!/^[A-Z]+ [^\r\n]+ HTTP\/1\.1\r\n/.test(head)) break;
          heads.push(head);
          if (/^upgrade:/im.test(head)) break;
          const length = /^content-length:\s*(\d+)\r$/im.exec(head);
          at = end + 4 + (length ? Number(length[1]) : 0);
        }
      }
      return heads;
    },
    hold() { holding = true; },
    heldCount() { return held.length; },
    release() { holding = false; for (const c of held.splice(0)) { sockets.delete(c); if (!c.destroyed) link(c); } },
    cutAll() { for (const s of sockets) s.destroy(); sockets.clear(); },
    close() { this.cutAll(); return new Promise((r) => server.close(r)); },
  };
}

// The WebSocket messages a server sent on a connection (`down` bytes, after the 101 head):
// [{ opcode, frames, payload: Buffer }] with control frames as their own entries.
export function serverWsMessages(downChunks) {
  const buf = Buffer.concat(downChunks);
  const headEnd = buf.indexOf('\r\n\r\n');
  if (!buf.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101') || headEnd < 0) {
    throw new Error('not a WebSocket connection: ' + buf.subarray(0, 80).toString('latin1'));
  }
  const messages = [];
  let partial = null;
  let at = headEnd + 4;
  while (at + 2 <= buf.length) {
    const fin = (buf[at] & 0x80) !== 0;
    const opcode = buf[at] & 0x0f;
    if (buf[at + 1] & 0x80) throw new Error('a server frame is masked');
    let len = buf[at + 1] & 0x7f;
    let head = 2;
    if (len === 126) { len = buf.readUInt16BE(at + 2); head = 4; }
    else if (len === 127) { len = Number(buf.readBigUInt64BE(at + 2)); head = 10; }
    if (at + head + len > buf.length) break;  // the rest had not arrived when the test looked
    const payload = buf.subarray(at + head, at + head + len);
    at += head + len;
    if (opcode >= 8) { messages.push({ opcode, frames: 1, payload }); continue; }
    if (opcode !== 0) {
      if (partial) throw new Error('a new data frame before the previous message ended');
      partial = { opcode, frames: 0, parts: [] };
    } else if (!partial) {
      throw new Error('a continuation frame outside a message');
    }
    partial.frames += 1;
    partial.parts.push(payload);
    if (fin) {
      messages.push({ opcode: partial.opcode, frames: partial.frames, payload: Buffer.concat(partial.parts) });
      partial = null;
    }
  }
  return messages;
}

// An HTTP server on 127.0.0.1 serving one blank HTML page at every path: the origin a page runs in.
export async function startPageServer() {
  const server = http.createServer((req, res) => {
    if (req.url === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><head><meta charset="utf-8"><title>another origin</title></head><body></body></html>');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    close() { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}
