// Upstream faults through ringcast, as the official SDK (and raw SSE) see them: errors before
// the first byte become statuses (after the retries the policy allows), errors after it a
// visible mid-stream error without a retry; a client that leaves aborts the upstream request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { startBlackHole, startMockUpstream, startRingcast } from './fakes/ringcast.mjs';
import { parseSse } from './fakes/clients.mjs';
import { openaiUpstream, withUpstream } from './fakes/upstream-setup.mjs';

const models = [{ name: 'gpt-test', upstream: 'fake', upstream_model: 'fake-model' }];
// Short backoffs; timeouts long enough that a loaded machine never hits them on an answer the fake
// does give (it runs in this process: building the 8 MiB line of `malformed: 'line'` can stall its
// event loop for a long while), short enough that the stalls the tests script end soon.
const fast = { retries_max: 2, backoff_base_ms: 5, backoff_cap_ms: 20, retry_after_cap_ms: 50,
               first_byte_timeout_ms: 3000, idle_timeout_ms: 3000, connect_timeout_ms: 1000, breaker_failures: 1000 };
const upstreams = (api = 'chat') => (fake) => [openaiUpstream('fake', fake.baseURL, { ...fast, api })];
const user = (content) => [{ role: 'user', content }];

async function post(srv, path, body) {
  const res = await fetch(srv.url(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: (() => { try { return JSON.parse(text); } catch { return null; } })() };
}

test('upstream faults before the first byte: statuses, envelopes, Retry-After and retries', async () => {
  await withUpstream({ upstreams: upstreams(), models }, async ({ fake, srv }) => {
    const chat = { model: 'gpt-test', messages: user('x') };
    const attempts = () => fake.generationRequests().length;
    // A 4xx envelope passes through with its status, not retried.
    fake.script({ status: 400, error: { message: 'Bad field.', param: 'temperature', code: 'invalid_value' } });
    let r = await post(srv, '/v1/chat/completions', chat);
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.error, { message: 'Bad field.', type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' });
    assert.equal(attempts(), 1);
    // 503, 503, then 200: retried, the client sees only the answer.
    fake.script({ status: 503 }, { status: 503 });
    r = await post(srv, '/v1/chat/completions', chat);
    assert.equal(r.status, 200, r.text);
    assert.equal(attempts(), 4);
    // 429 whose Retry-After (1 s) is beyond retry_after_cap_ms: passed on at once, with it.
    fake.script({ status: 429, retry_after: 1 });
    r = await post(srv, '/v1/chat/completions', { ...chat, stream: true });
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get('retry-after')) >= 1, `retry-after ${r.headers.get('retry-after')}`);
    assert.equal(r.json.error.code, 'rate_limit_exceeded');
    assert.equal(attempts(), 5);
    // 429 with a wait within the cap (retry-after-ms), three times: retried twice, then passed on.
    const soon = { status: 429, headers: { 'retry-after-ms': '20' } };
    fake.script(soon, soon, soon);
    r = await post(srv, '/v1/chat/completions', chat);
    assert.equal(r.status, 429);
    assert.ok(r.headers.get('retry-after'));
    assert.equal(attempts(), 8);
    // 502s after the retries: 502.
    fake.script({ status: 502 }, { status: 502 }, { status: 502 });
    r = await post(srv, '/v1/chat/completions', chat);
    assert.equal(r.status, 502);
    assert.equal(attempts(), 11);
    // A 500 is not retried (an engine that failed on a request usually fails again): 502 at once.
    fake.script({ status: 500 });
    r = await post(srv, '/v1/chat/completions', chat);
    assert.equal(r.status, 502);
    assert.equal(attempts(), 12);
    // The upstream never answers: 504 once the first-byte timeout passes, also for a stream.
    fake.script({ stall: 'before_head' });
    r = await post(srv, '/v1/chat/completions', { ...chat, stream: true });
    assert.equal(r.status, 504, r.text);
    assert.equal(r.json.error.code, 'upstream_timeout');
    await fake.waitFor((f) => f.requests.at(-1).abortedAt !== null, 5000, 'the stalled request aborted');
    // Malformed JSON in a whole answer: 502.
    fake.script({ malformed: 'json' });
    r = await post(srv, '/v1/chat/completions', chat);
    assert.equal(r.status, 502);
    assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'param', 'code']);
  });
});

test('upstream faults: a bad key is 502 upstream_auth_failed, the SDK sees typed errors', async () => {
  await withUpstream({ upstreams: upstreams(), models, fakeOptions: { apiKey: 'another-key' } }, async ({ fake, client }) => {
    await assert.rejects(client.chat.completions.create({ model: 'gpt-test', messages: user('x') }),
      (e) => e.status === 502 && e.code === 'upstream_auth_failed' && !/another-key|upstream-secret/.test(e.message));
    assert.equal(fake.generationRequests().length, 1);
  });
});

test('upstream faults: unreachable is 503 with Retry-After, a connect black hole 504', async () => {
  const closed = await new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
  const hole = await startBlackHole();
  const srv = await startRingcast({ config: {
    upstreams: [openaiUpstream('refused', `http://127.0.0.1:${closed}/v1`, fast), openaiUpstream('hole', `http://127.0.0.1:${hole.port}/v1`, fast)],
    models: [{ name: 'm-refused', upstream: 'refused' }, { name: 'm-hole', upstream: 'hole' }] }, env: { FAKE_UPSTREAM_KEY: 'k' } });
  try {
    let r = await post(srv, '/v1/chat/completions', { model: 'm-refused', messages: user('x'), stream: true });
    assert.equal(r.status, 503, r.text);
    assert.ok(r.headers.get('retry-after'));
    assert.equal(r.json.error.code, 'upstream_unavailable');
    r = await post(srv, '/v1/chat/completions', { model: 'm-hole', messages: user('x') });
    assert.equal(r.status, 504, r.text);
    assert.equal(r.json.error.code, 'upstream_timeout');
  } finally {
    await srv.stop();
    await hole.close();
  }
});

test('upstream faults after the first byte: a visible mid-stream error, never a retry', async () => {
  await withUpstream({ upstreams: upstreams(), models }, async ({ fake, srv, client }) => {
    const stream = async (behaviour, path = '/v1/chat/completions', body = { model: 'gpt-test', messages: user('x'), stream: true }) => {
      fake.script(behaviour);
      const before = fake.generationRequests().length;
      const r = await post(srv, path, body);
      assert.equal(r.status, 200, r.text);
      assert.equal(fake.generationRequests().length, before + 1, 'no retry after the first byte');
      return parseSse(r.text);
    };
    const chatError = (frames) => {
      assert.notEqual(frames.at(-1).data, '[DONE]');
      const last = JSON.parse(frames.at(-1).data);
      assert.ok(last.error, JSON.stringify(last));
      return { error: last.error, tokens: frames.slice(0, -1).map((f) => JSON.parse(f.data).choices[0]?.delta?.content ?? '').join('') };
    };
    let out = chatError(await stream({ drop_after: 2 }));
    assert.equal(out.tokens, 'echo:x t1');
    assert.ok(out.error.message);
    out = chatError(await stream({ malformed: 'sse', malformed_after: 1 }));
    assert.equal(out.error.code, 'upstream_protocol_error');
    out = chatError(await stream({ malformed: 'line', malformed_after: 1, line_bytes: 8 * 1024 * 1024 }));
    assert.equal(out.error.code, 'upstream_protocol_error');
    out = chatError(await stream({ stall: 'after_first' }));
    assert.equal(out.error.code, 'upstream_timeout');
    // The upstream's own in-stream error passes on.
    out = chatError(await stream({ error_after: 1 }));
    assert.match(out.error.message, /server had an error/);
    // The SDK raises it.
    fake.script({ drop_after: 1 });
    await assert.rejects((async () => { for await (const c of await client.chat.completions.create({ model: 'gpt-test', messages: user('x'), stream: true })) void c; })(),
      (e) => e instanceof OpenAI.APIError);
    // Responses streams end with an error event.
    const frames = await stream({ drop_after: 2 }, '/v1/responses', { model: 'gpt-test', input: 'x', stream: true });
    const last = frames.at(-1);
    assert.equal(last.event, 'error', JSON.stringify(last));
    assert.equal(JSON.parse(last.data).type, 'error');
  });
});

test('upstream faults: a client that leaves aborts the upstream request, before and after the first token', async () => {
  await withUpstream({ upstreams: upstreams(), models }, async ({ fake, client }) => {
    for (const stall of ['before_head', 'after_head', 'after_first']) {
      fake.script({ stall, first_token_ms: 0 });
      const ac = new AbortController();
      const p = client.chat.completions.create({ model: 'gpt-test', messages: user(stall), stream: true }, { signal: ac.signal });
      const rec = () => fake.generationRequests().find((r) => r.body?.messages?.[0]?.content === stall);
      await fake.waitFor(() => rec() && (stall === 'before_head' || rec().firstByteAt !== null), 10000, `the ${stall} request upstream`);
      if (stall === 'after_first') { const s = await p; await s[Symbol.asyncIterator]().next(); }
      const leftAt = performance.now();
      ac.abort();
      await p.catch(() => {});
      await fake.waitFor(() => rec().abortedAt !== null, 5000, `the upstream request aborted (${stall})`);
      assert.ok(rec().abortedAt - leftAt < 1000, `aborted ${rec().abortedAt - leftAt} ms after the client left`);
    }
    await fake.waitFor((f) => f.active() === 0, 5000, 'no request left upstream');
  });
});

test('upstream killed mid-stream: a second ringcast on mock, killed, gives a visible error', async () => {
  const upstream = await startMockUpstream(['--mock-tokens-per-s', '20', '--mock-tokens', '200']);
  const srv = await startRingcast({ args: ['--upstream', upstream.baseURL] });
  let killed = false;
  try {
    const client = new OpenAI({ apiKey: 'k', baseURL: srv.baseURL, maxRetries: 0 });
    let text = '';
    await assert.rejects((async () => {
      for await (const c of await client.chat.completions.create({ model: 'ringcast-mock', messages: user('long story'), stream: true })) {
        text += c.choices[0]?.delta?.content ?? '';
        if (text.length > 0 && !killed) { killed = true; upstream.signal('SIGKILL'); }
      }
    })(), (e) => e instanceof OpenAI.APIError);
    assert.ok(killed);
  } finally {
    await srv.stop();
    if (!killed) await upstream.stop();
  }
});
