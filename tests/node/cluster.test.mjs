// Topics across 3 ringcast nodes and a 3-server NATS JetStream cluster (cluster_harness.mjs),
// with clients nobody here wrote: `eventsource` (the WHATWG EventSource for Node) and `ws`.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { startCluster, startBalancer } from './cluster_harness.mjs';
import { postJson, waitFor } from './harness.mjs';
import { wireRecorder } from './ringcast_schemas.mjs';

// Every event the subscribers receive is checked against docs/schemas.
const wire = wireRecorder();
afterEach(() => wire.assertValid());

function openEventSource(url, seen, name) {
  const es = new EventSource(url, { fetch: wire.sseFetch });
  const state = { opens: 0, errors: 0 };
  es.onopen = () => { state.opens += 1; };
  es.onerror = () => { state.errors += 1; };
  es.addEventListener('message', (ev) => {
    seen.push({ id: ev.lastEventId, data: JSON.parse(ev.data), name });
  });
  es.addEventListener('reset', (ev) => {
    seen.push({ reset: JSON.parse(ev.data), name });
  });
  return { es, state };
}

async function openWs(port, topic, seen) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const acks = [];
  ws.on('message', (raw) => {
    const m = wire.ws(JSON.parse(raw.toString()));
    if (m.id === 'sub' && m.event === 'message') seen.push({ id: m.data.id, data: m.data.data });
    else if (m.id === 'sub' && m.event === 'subscribed') seen.subscribed = true;
    else acks.push(m);
  });
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  ws.send(JSON.stringify({ id: 'sub', action: 'subscribe', payload: { topic } }));
  await waitFor(() => seen.subscribed, 10000, 'subscribed');
  return { ws, acks };
}

// Publishes probes until every list has one: from then on each subscriber gets everything.
async function barrier(url, lists) {
  for (let k = 0; ; k++) {
    const r = await postJson(url, { probe: k });
    assert.equal(r.status, 200);
    try {
      await waitFor(() => lists.every((l) => l.some((e) => e.data && e.data.probe === k)), 500, 'probe');
      return r.json.id;
    } catch (err) {
      if (k > 40) throw err;
    }
  }
}

const after = (list, id) => list.slice(list.findIndex((e) => e.id === id) + 1);

test('eventsource and ws subscribers on three nodes receive one order with the same ids', async () => {
  const cluster = await startCluster({ nodes: 3 });
  const sources = [];
  const sockets = [];
  try {
    const topic = 'node.order';
    const lists = [];
    for (let i = 0; i < 3; i++) {
      const sse = [];
      sources.push(openEventSource(cluster.url(i, `/v1/topics/${topic}/events`), sse, `es${i}`).es);
      const wsl = [];
      sockets.push(await openWs(cluster.ports[i], topic, wsl));
      lists.push(sse, wsl);
    }
    const start = await barrier(cluster.url(0, `/v1/topics/${topic}`), lists);

    // Every node publishes: 10 over HTTP (fetch) and 10 over its WebSocket, concurrently.
    const published = new Map();
    await Promise.all([0, 1, 2].map(async (i) => {
      for (let k = 0; k < 10; k++) {
        const data = { node: i, via: 'http', k };
        const r = await postJson(cluster.url(i, `/v1/topics/${topic}`), data);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        published.set(r.json.id, data);
      }
    }).concat([0, 1, 2].map(async (i) => {
      const { ws, acks } = sockets[i];
      for (let k = 0; k < 10; k++) {
        ws.send(JSON.stringify({ id: `p${k}`, action: 'publish', payload: { topic, data: { node: i, via: 'ws', k } } }));
      }
      await waitFor(() => acks.length === 10, 20000, 'ws publish answers');
      for (const a of acks) {
        assert.equal(a.event, 'published', JSON.stringify(a));
        published.set(a.data.id, { node: i, via: 'ws', k: Number(a.id.slice(1)) });
      }
    })));
    assert.equal(published.size, 60);

    await waitFor(() => lists.every((l) => after(l, start).length >= 60), 30000, '60 events everywhere');
    const reference = after(lists[0], start).map((e) => [e.id, e.data]);
    assert.equal(reference.length, 60);
    for (const l of lists) {
      assert.deepEqual(after(l, start).map((e) => [e.id, e.data]), reference);
      assert.equal(l.filter((e) => e.reset).length, 0);
    }
    assert.deepEqual(new Map(reference), published);
    const seqs = reference.map(([id]) => Number(id.split('-')[1]));
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(new Set(reference.map(([id]) => id.split('-')[0])).size, 1);
  } finally {
    for (const es of sources) es.close();
    for (const { ws } of sockets) ws.close();
    await cluster.stop();
  }
});

test('eventsource behind a load balancer resumes on another node when its node is killed', async () => {
  const cluster = await startCluster({ nodes: 3, nodeArgs: ['--sse-retry-ms', '100'] });
  // The balancer prefers node 0, then node 1.
  const lb = await startBalancer(() => [cluster.ports[0], cluster.ports[1]]);
  let viaLb;
  let direct;
  try {
    const topic = 'node.failover';
    const seen = [];
    const ref = [];
    viaLb = openEventSource(`http://127.0.0.1:${lb.port}/v1/topics/${topic}/events`, seen, 'lb');
    direct = openEventSource(cluster.url(2, `/v1/topics/${topic}/events`), ref, 'ref');
    const start = await barrier(cluster.url(2, `/v1/topics/${topic}`), [seen, ref]);
    assert.equal(viaLb.state.opens, 1);

    const accepted = [];
    let stop = false;
    const publisher = (async () => {
      for (let k = 0; !stop; k++) {
        const r = await postJson(cluster.url(2, `/v1/topics/${topic}`), { k });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        accepted.push(r.json.id);
      }
    })();
    await waitFor(() => accepted.length >= 10, 20000, '10 publications');
    await cluster.killNode(0);  // kill -9: the stream breaks, EventSource reconnects through the balancer
    await waitFor(() => viaLb.state.opens >= 2, 20000, 'reconnect');
    const mark = accepted.length;
    await waitFor(() => accepted.length >= mark + 10, 20000, '10 more publications');
    stop = true;
    await publisher;
    await waitFor(() => accepted.every((id) => seen.some((e) => e.id === id)), 20000, 'every publication via the balancer');
    await waitFor(() => accepted.every((id) => ref.some((e) => e.id === id)), 20000, 'every publication on node 2');
    assert.deepEqual(after(seen, start).map((e) => [e.id, e.data]), after(ref, start).map((e) => [e.id, e.data]));
    assert.equal(seen.filter((e) => e.reset).length, 0);
  } finally {
    viaLb?.es.close();
    direct?.es.close();
    await lb.close();
    await cluster.stop();
  }
});
