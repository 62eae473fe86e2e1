// End to end: a responses-ws upstream's refusals and failures as clients see them: answered with
// an HTTP status before any stream starts (lazy start), the session evicted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startResponsesWsFake } from './fakes/responses-ws-fake.mjs';
import { startRingcast } from './fakes/ringcast.mjs';
import { metrics, metricSum } from './fakes/upstream-setup.mjs';

const KEY = 'ws-upstream-key';

async function withWsUpstream({ stateful = true, extra = {}, shards = 1 } = {}, fn) {
  const fake = await startResponsesWsFake({ apiKey: KEY });
  let srv = null;
  try {
    srv = await startRingcast({
      config: {
        upstreams: [{ name: 'ws-up', kind: 'responses-ws', endpoints: [fake.baseURL],
                      api_key_env: 'WS_UP_KEY', stateful, ...extra }],
        models: [{ name: 'ws-model', upstream: 'ws-up', upstream_model: 'fake-ws-model' }],
      },
      env: { WS_UP_KEY: KEY },
      shards,
    });
    const client = new OpenAI({ apiKey: 'client-key', baseURL: srv.baseURL, maxRetries: 0, timeout: 30000 });
    await fn({ fake, srv, client });
  } finally {
    if (srv) await srv.stop();
    await fake.close();
  }
}

test('responses-ws stateful: an unknown previous_response_id is 400 before any stream', async () => {
  await withWsUpstream({}, async ({ fake, client }) => {
    for (const stream of [false, true]) {
      await assert.rejects(
        client.responses.create({ model: 'ws-model', input: 'x', previous_response_id: 'resp_0_0123456789abcdef', stream }),
        (e) => {
          assert.equal(e.status, 400);
          assert.equal(e.code, 'previous_response_not_found');
          assert.equal(e.param, 'previous_response_id');
          return true;
        });
    }
    assert.equal(fake.creates.length, 0);
  });
});

test('responses-ws stateful: a follow-up while the previous one runs is 409', async () => {
  await withWsUpstream({}, async ({ fake, client }) => {
    const r1 = await client.responses.create({ model: 'ws-model', input: 'first' });
    fake.script({ stall: 'after_first' });
    const controller = new AbortController();
    const running = await client.responses.create({ model: 'ws-model', input: 'slow', previous_response_id: r1.id, stream: true },
                                                  { signal: controller.signal });
    const it = running[Symbol.asyncIterator]();
    await it.next();  // the follow-up has started
    await assert.rejects(
      client.responses.create({ model: 'ws-model', input: 'racing', previous_response_id: r1.id }),
      (e) => e.status === 409 && e.code === 'previous_response_in_progress');
    controller.abort();
    // The abandoned follow-up left the socket in an unknown state: it is closed, the id forgotten.
    await fake.waitFor((f) => f.openSockets() === 0, 10000, 'the abandoned socket closed');
    await assert.rejects(
      client.responses.create({ model: 'ws-model', input: 'again', previous_response_id: r1.id }),
      (e) => e.status === 400 && e.code === 'previous_response_not_found');
  });
});

test('responses-ws stateful: no free session is 503 with Retry-After', async () => {
  await withWsUpstream({ extra: { max_retained_sessions: 1 } }, async ({ fake, srv }) => {
    fake.script({ stall: 'after_first' });
    const controller = new AbortController();
    const busy = await fetch(srv.url('/v1/responses'), {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: controller.signal,
      body: JSON.stringify({ model: 'ws-model', input: 'holds the only slot', stream: true }),
    });
    assert.equal(busy.status, 200);
    const reader = busy.body.getReader();
    await reader.read();
    const refused = await fetch(srv.url('/v1/responses'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ws-model', input: 'no room', stream: true }),
    });
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal((await refused.json()).error.code, 'upstream_sessions_exhausted');
    controller.abort();
  });
});

test('responses-ws stateful: an upstream failure evicts the session', async () => {
  await withWsUpstream({}, async ({ fake, client }) => {
    const r1 = await client.responses.create({ model: 'ws-model', input: 'first' });
    fake.script({ error_after: 1 });
    const failing = await client.responses.create({ model: 'ws-model', input: 'fails', previous_response_id: r1.id, stream: true });
    const types = [];
    try {
      for await (const e of failing) types.push(e.type);
    } catch (e) {
      types.push(`threw:${e.message}`);
    }
    assert.ok(types.some((t) => t === 'error' || t === 'response.failed' || t.startsWith('threw')), types.join(','));
    await assert.rejects(
      client.responses.create({ model: 'ws-model', input: 'after', previous_response_id: r1.id }),
      (e) => e.status === 400 && e.code === 'previous_response_not_found');
  });
});

test('responses-ws stateful: malformed upstream events end the stream with upstream_protocol_error', async () => {
  await withWsUpstream({}, async ({ fake, srv }) => {
    fake.script({ malformed: 'frame', malformed_after: 0 });
    const r = await fetch(srv.url('/v1/responses'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ws-model', input: 'x' }),
    });
    assert.equal(r.status, 502);
    assert.equal((await r.json()).error.code, 'upstream_protocol_error');
    await fake.waitFor((f) => f.openSockets() === 0, 10000, 'the socket dropped');
    const m = await metrics(srv);
    assert.equal(metricSum(m, 'ringcast_upstream_errors_total', { upstream: 'ws-up', kind: 'stream' }), 1);
    assert.equal(metricSum(m, 'ringcast_upstream_session_evictions_total', { reason: 'failed' }), 1);
  });
});

