// permessage-deflate with the `ws` client (perMessageDeflate), against `--ws-deflate`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, postJson, waitFor } from './harness.mjs';

function open(url, options) {
  const ws = new WebSocket(url, options);
  const got = [];
  let answer = '';  // the server's Sec-WebSocket-Extensions
  ws.once('upgrade', (res) => { answer = res.headers['sec-websocket-extensions'] ?? ''; });
  ws.on('message', (data, isBinary) => got.push(isBinary ? data : data.toString()));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, got, answer }));
    ws.once('error', reject);
  });
}

test('ws perMessageDeflate echo, compressed both ways', async () => {
  const srv = await startServer(['--echo', '--ws-deflate', '--ws-deflate-min-bytes', '32']);
  try {
    // threshold 0: the client compresses everything it sends.
    const { ws, got, answer } = await open(`ws://127.0.0.1:${srv.port}/echo`,
      { perMessageDeflate: { threshold: 0 } });
    assert.equal(ws.extensions, 'permessage-deflate');
    assert.ok(answer.includes('client_no_context_takeover'), answer);
    const texts = ['short', 'é✓'.repeat(2000), JSON.stringify({ n: Array.from({ length: 3000 }, (_, i) => i) })];
    for (const t of texts) ws.send(t);
    const bin = Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 31) % 251));
    ws.send(bin);
    await waitFor(() => got.length === 4, 10000, 'four echoes');
    assert.deepEqual(got.slice(0, 3), texts);
    assert.ok(Buffer.compare(got[3], bin) === 0);
    // Over the limit once inflated: 1009.
    const closed = new Promise((r) => ws.once('close', (code) => r(code)));
    ws.send('z'.repeat((1 << 20) + 10));
    assert.equal(await closed, 1009);
  } finally {
    await srv.stop();
  }
});

test('ws fan-out to compressing and plain subscribers at once', async () => {
  const srv = await startServer(['--ws-deflate', '--ws-deflate-min-bytes', '64'], { shards: 2 });
  try {
    const url = `ws://127.0.0.1:${srv.port}/ws`;
    const subs = {
      keep: await open(url, {}),  // ws's default: context takeover allowed
      alone: await open(url, { perMessageDeflate: { serverNoContextTakeover: true } }),
      plain: await open(url, { perMessageDeflate: false }),
    };
    assert.equal(subs.plain.ws.extensions, '');
    assert.equal(subs.keep.ws.extensions, 'permessage-deflate');
    assert.ok(!subs.keep.answer.includes('server_no_context_takeover'), subs.keep.answer);
    assert.ok(subs.alone.answer.includes('server_no_context_takeover'), subs.alone.answer);
    for (const [name, s] of Object.entries(subs)) {
      s.ws.send(JSON.stringify({ id: name, action: 'subscribe', payload: { topic: 'z' } }));
    }
    await waitFor(() => Object.values(subs).every((s) => s.got.length === 1), 10000, 'subscribed');
    const events = Array.from({ length: 6 }, (_, i) => ({ i, text: 'ringcast '.repeat(i * 10) }));
    for (const e of events) await postJson(srv.url('/v1/topics/z'), e);
    await waitFor(() => Object.values(subs).every((s) => s.got.length === 1 + events.length), 10000,
      'every event everywhere');
    for (const [name, s] of Object.entries(subs)) {
      const msgs = s.got.slice(1).map((t) => JSON.parse(t));
      assert.deepEqual(msgs.map((m) => [m.id, m.event]), events.map(() => [name, 'message']));
      assert.deepEqual(msgs.map((m) => m.data.data), events);
      s.ws.close();
    }
  } finally {
    await srv.stop();
  }
});
