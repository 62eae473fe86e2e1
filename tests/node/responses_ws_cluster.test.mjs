// Retained upstream WebSocket sessions across nodes (docs/cluster.md "Retained upstream
// sessions"): two ringcast nodes joined by a real `nats-server -js`, both in front of the same
// fake Responses-over-WebSocket upstream with `stateful = true`. A response created through node 1
// is continued through node 2 on node 1's retained socket (the fake sees one socket and no
// replay), streamed and not, with the official OpenAI SDK and raw fetch; a client leaving node 2
// mid-stream cancels the upstream response on node 1; node 1 killed → node 2 answers 503
// node_unavailable (before the first event) or ends the stream with an error event (after it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startResponsesWsFake } from './fakes/responses-ws-fake.mjs';
import { startRingcast } from './fakes/ringcast.mjs';
import { responsesWs } from './fakes/upstream-setup.mjs';
import { startNats, waitKvKey, waitReady } from './nats_helpers.mjs';

const KEY = 'ws-upstream-key';

async function withTwoNodes(fn) {
  const nats = await startNats();
  const fake = await startResponsesWsFake({ apiKey: KEY });
  const nodes = [];
  const killed = new Set();
  try {
    for (const name of ['ws1', 'ws2']) {
      nodes.push(await startRingcast({
        config: {
          upstreams: [{ name: 'ws-up', kind: 'responses-ws', endpoints: [fake.baseURL],
                        api_key_env: 'WS_UP_KEY', stateful: true }],
          models: [{ name: 'ws-model', upstream: 'ws-up', upstream_model: 'fake-ws-model' }],
        },
        env: { WS_UP_KEY: KEY },
        args: ['--nats', nats.url, '--node-id', name],
        shards: 2,
      }));
    }
    await Promise.all(nodes.map(waitReady));
    const clients = nodes.map((srv) => new OpenAI({ apiKey: 'k', baseURL: srv.url('/v1'), maxRetries: 0, timeout: 30000 }));
    const kill = async (i) => {
      killed.add(i);
      nodes[i].signal('SIGKILL');
      await nodes[i].exitCode();
    };
    await fn({ fake, nats, nodes, clients, kill });
  } finally {
    for (const [i, srv] of nodes.entries()) {
      if (!killed.has(i)) await srv.stop();
    }
    await fake.close();
    await nats.stop();
  }
}

function outputText(r) {
  return r.output.flatMap((i) => i.content ?? []).map((c) => c.text ?? '').join('');
}

// The owner record is written asynchronously as the response ends: a follow-up sent on another
// node in the same instant may not see it yet (docs/cluster.md). Waits until it is in the bucket.
function recorded(nats, id) { return waitKvKey(nats.url, `session.${id}`); }

async function sseEvents(res) {
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.includes('data:')).map((b) => {
    const ev = /^event: (.*)$/m.exec(b);
    const data = /^data: (.*)$/m.exec(b);
    return { event: ev ? ev[1] : null, data: data ? data[1] : null };
  });
}

test('responses-ws cluster: follow-ups through another node run on the retained socket', async () => {
  await withTwoNodes(async ({ fake, nats, nodes, clients: [one, two] }) => {
    const r1 = await one.responses.create({ model: 'ws-model', input: 'first' });
    await recorded(nats, r1.id);
    const r2 = await two.responses.create({ model: 'ws-model', input: 'second', previous_response_id: r1.id });
    assert.match(outputText(r2), /^turn2:/);
    assert.equal(r2.previous_response_id, r1.id);
    await recorded(nats, r2.id);
    // Streamed, through node 2 again, continuing the response node 2 answered.
    const s3 = await two.responses.create({ model: 'ws-model', input: 'third', previous_response_id: r2.id, stream: true });
    let text = '';
    let completed = null;
    for await (const e of s3) {
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') completed = e.response;
    }
    assert.match(text, /^turn3:/);
    assert.ok(completed);
    await recorded(nats, completed.id);
    // And back on node 1.
    const r4 = await one.responses.create({ model: 'ws-model', input: 'fourth', previous_response_id: completed.id });
    assert.match(outputText(r4), /^turn4:/);
    // The Responses WebSocket mode on node 2 continues it too.
    await recorded(nats, r4.id);
    const events = await responsesWs(nodes[1].url('/v1/responses').replace('http', 'ws'),
                                     { model: 'ws-model', input: 'fifth', previous_response_id: r4.id });
    const text5 = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.match(text5, /^turn5:/, JSON.stringify(events).slice(0, 400));
    assert.equal(fake.sockets.length, 1, 'one upstream socket for the whole conversation');
    for (let i = 1; i < 5; i++) {
      assert.equal(fake.creates[i].body.previous_response_id, fake.creates[i - 1].responseId);
      assert.equal(fake.creates[i].socket ?? fake.sockets[0].id, fake.sockets[0].id);
    }
    // More events than the flow-control window (64): the acknowledgements keep it going.
    const fifth = events.at(-1).response;
    await recorded(nats, fifth.id);
    fake.script({ tokens: 500 });
    const s6 = await two.responses.create({ model: 'ws-model', input: 'sixth', previous_response_id: fifth.id, stream: true });
    let deltas = 0;
    let text6 = '';
    for await (const e of s6) {
      if (e.type === 'response.output_text.delta') { deltas++; text6 += e.delta; }
    }
    assert.ok(deltas >= 500, `${deltas} deltas`);
    assert.match(text6, /^turn6:/);
    assert.equal(fake.sockets.length, 1);
    // An id no node retains is still 400 previous_response_not_found, on either node.
    for (const client of [one, two]) {
      for (const id of ['resp_0_0123456789abcdef', 'resp_0_"x" >*.']) {
        await assert.rejects(client.responses.create({ model: 'ws-model', input: 'x', previous_response_id: id }),
                             (e) => e.status === 400 && e.code === 'previous_response_not_found');
      }
    }
    // No replay: each follow-up sends only its own input.
    assert.equal(JSON.stringify(fake.creates[1].body.input).includes('first'), false);
  });
});

test('responses-ws cluster: a client leaving node 2 mid-stream cancels the response on node 1', async () => {
  await withTwoNodes(async ({ fake, nats, nodes, clients: [one], kill }) => {
    const r1 = await one.responses.create({ model: 'ws-model', input: 'first' });
    await recorded(nats, r1.id);
    fake.script({ tokens: 400, interval_ms: 20 });
    const ac = new AbortController();
    const res = await fetch(nodes[1].url('/v1/responses'), {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
      body: JSON.stringify({ model: 'ws-model', input: 'long', previous_response_id: r1.id, stream: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let got = '';
    while (!got.includes('response.output_text.delta')) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'stream ended before the first delta');
      got += Buffer.from(value).toString();
    }
    ac.abort();
    const rec = fake.creates[1];
    await fake.waitFor(() => rec.abortedAt !== null, 15000, 'the upstream response aborted on node 1');
    assert.equal(rec.finishedAt ?? null, null);
  });
});

test('responses-ws cluster: node 1 gone, node 2 answers 503 node_unavailable or an error event mid-stream', async () => {
  await withTwoNodes(async ({ fake, nats, nodes, clients: [one], kill }) => {
    const a = await one.responses.create({ model: 'ws-model', input: 'a' });
    const b = await one.responses.create({ model: 'ws-model', input: 'b' });
    await recorded(nats, a.id);
    await recorded(nats, b.id);
    // Mid-stream: node 1 dies after the first delta.
    fake.script({ tokens: 400, interval_ms: 20 });
    const res = await fetch(nodes[1].url('/v1/responses'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ws-model', input: 'long', previous_response_id: a.id, stream: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let got = '';
    while (!got.includes('response.output_text.delta')) {
      const { value, done } = await reader.read();
      assert.ok(!done);
      got += Buffer.from(value).toString();
    }
    await kill(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got += Buffer.from(value).toString();
    }
    assert.match(got, /node_unavailable/, got.slice(-600));
    // Before the first event: 503 + Retry-After.
    const r = await fetch(nodes[1].url('/v1/responses'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ws-model', input: 'again', previous_response_id: b.id }),
    });
    const body = await r.json();
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, 'node_unavailable');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  });
});

test('responses-ws cluster: node 2 gone mid-stream, node 1 cancels the upstream response', async () => {
  await withTwoNodes(async ({ fake, nats, nodes, clients: [one], kill }) => {
    const r1 = await one.responses.create({ model: 'ws-model', input: 'first' });
    await recorded(nats, r1.id);
    // Fast enough that node 1 fills its window of 64 unacknowledged events and pauses the upstream
    // socket before it gives up (5 s of silence): the cancel must still close it, and node 1
    // must still stop cleanly afterwards (the teardown checks its exit code).
    fake.script({ tokens: 2000, interval_ms: 20 });
    const res = await fetch(nodes[1].url('/v1/responses'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ws-model', input: 'long', previous_response_id: r1.id, stream: true }),
    });
    const reader = res.body.getReader();
    let got = '';
    while (!got.includes('response.output_text.delta')) {
      const { value, done } = await reader.read();
      assert.ok(!done);
      got += Buffer.from(value).toString();
    }
    await kill(1);
    // Node 1 hears nothing more from node 2 (no acknowledgement, no keepalive) and cancels.
    const rec = fake.creates[1];
    await fake.waitFor(() => rec.abortedAt !== null, 20000, 'the upstream response aborted on node 1');
  });
});
