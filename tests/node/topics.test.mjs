// Topics with clients nobody here wrote: `eventsource` (the WHATWG EventSource for Node) and `ws`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { startServer, startProxy, postJson, waitFor, sleep } from './harness.mjs';
import { wireRecorder } from './ringcast_schemas.mjs';

test('eventsource reconnects with Last-Event-ID and loses or repeats nothing', async () => {
  const srv = await startServer(['--sse-retry-ms', '200'], { shards: 2 });
  const proxy = await startProxy(srv.port);
  try {
    const seen = [];
    const wire = wireRecorder();
    let opens = 0;
    const es = new EventSource(`http://127.0.0.1:${proxy.port}/v1/topics/ticks/events`, { fetch: wire.sseFetch });
    es.onopen = () => { opens += 1; };
    es.addEventListener('message', (ev) => {
      seen.push({ id: ev.lastEventId, n: JSON.parse(ev.data).n });
    });
    await waitFor(() => opens === 1, 10000, 'first open');
    for (let n = 1; n <= 20; n++) {
      await postJson(srv.url('/v1/topics/ticks'), { n });
      if (n === 8) {
        await waitFor(() => seen.length >= 5, 10000, 'some events before the cut');
        proxy.cutAll();  // the stream breaks mid-way; publications continue meanwhile
      }
    }
    await waitFor(() => opens >= 2, 10000, 'reconnect');
    await waitFor(() => seen.length >= 20, 10000, 'all 20 events');
    await sleep(100);
    es.close();
    assert.deepEqual(seen.map((e) => e.n), Array.from({ length: 20 }, (_, i) => i + 1));
    // Ids are <epoch>-<seq> with one epoch.
    const epochs = new Set(seen.map((e) => e.id.split('-')[0]));
    assert.equal(epochs.size, 1);
    assert.deepEqual(seen.map((e) => Number(e.id.split('-')[1])), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.ok(wire.count >= 20, `only ${wire.count} SSE events validated`);
    wire.assertValid();
  } finally {
    await proxy.close();
    await srv.stop();
  }
});

test('ws subscribe and publish across shards', async () => {
  const srv = await startServer([], { shards: 2 });
  try {
    const sub = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`);
    const got = [];
    const wire = wireRecorder();
    sub.on('message', (data) => got.push(wire.ws(JSON.parse(data.toString()))));
    await new Promise((r, j) => { sub.once('open', r); sub.once('error', j); });
    sub.send(JSON.stringify({ id: 'sub-1', action: 'subscribe', payload: { topic: 'room.42' } }));
    await waitFor(() => got.some((m) => m.event === 'subscribed'), 10000, 'subscribed');

    const pub = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`);
    const acks = [];
    pub.on('message', (data) => acks.push(wire.ws(JSON.parse(data.toString()))));
    await new Promise((r, j) => { pub.once('open', r); pub.once('error', j); });
    for (let i = 0; i < 50; i++) {
      pub.send(JSON.stringify({ id: `p${i}`, action: 'publish', payload: { topic: 'room.42', data: { i, s: 'é✓' } } }));
    }
    await waitFor(() => got.filter((m) => m.event === 'message').length === 50, 10000, '50 messages');
    await waitFor(() => acks.length === 50, 10000, '50 acks');
    const messages = got.filter((m) => m.event === 'message');
    assert.deepEqual(messages.map((m) => m.data.data.i), Array.from({ length: 50 }, (_, i) => i));
    for (const m of messages) {
      assert.equal(m.id, 'sub-1');  // every event carries the subscribe request's id
      assert.equal(m.data.topic, 'room.42');
      assert.equal(m.data.data.s, 'é✓');
    }
    assert.deepEqual(acks.map((a) => a.event), Array(50).fill('published'));
    assert.deepEqual(acks.map((a) => a.data.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    wire.assertValid();
    sub.close(); pub.close();
  } finally {
    await srv.stop();
  }
});
