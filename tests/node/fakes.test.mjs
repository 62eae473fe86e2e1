// Self-tests of the fake upstreams (tests/node/fakes) with clients nobody here wrote: the
// official OpenAI SDK, raw fetch for the wire shapes, `ws`, and `openssl`-made certificates.
// The end-to-end upstream suites trust these fakes to behave like the real API; this file is
// why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { startOpenAIFake } from './fakes/openai-fake.mjs';
import { startResponsesWsFake } from './fakes/responses-ws-fake.mjs';
import { makeTestCa } from './fakes/test-ca.mjs';
import { startBlackHole, startMockUpstream, startRingcast } from './fakes/ringcast.mjs';
import { readSse, wsEvents } from './fakes/clients.mjs';

async function withFake(opts, fn) {
  const fake = await startOpenAIFake(opts);
  const client = new OpenAI({ apiKey: opts.apiKey ?? 'k', baseURL: fake.baseURL, maxRetries: 0, timeout: 20000 });
  try { await fn(fake, client); } finally { await fake.close(); }
}

const weatherTool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

test('fake chat: SDK whole and streamed answers agree, chunks have the real shapes', async () => {
  await withFake({}, async (fake, client) => {
    const request = { model: 'fake-model', messages: [{ role: 'user', content: 'hello there' }], n: 2, logprobs: true };
    const whole = await client.chat.completions.create(request);
    assert.equal(whole.object, 'chat.completion');
    assert.deepEqual(whole.choices.map((c) => c.message.content), ['echo:hello_there t1 t2 t3 t4 t5', 'echo:hello_there t1 t2 t3 t4 t5']);
    assert.equal(whole.choices[0].logprobs.content.length, 6);
    assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + 12);

    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    const text = ['', ''];
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) { usage = chunk.usage; assert.deepEqual(chunk.choices, []); continue; }
      for (const c of chunk.choices) text[c.index] += c.delta.content ?? '';
    }
    assert.deepEqual(text, whole.choices.map((c) => c.message.content));
    assert.deepEqual(usage, whole.usage);

    // On the wire: role chunk first, "usage": null on every chunk but the last, then [DONE].
    const res = await fetch(`${fake.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true }, max_tokens: 3 }) });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const frames = await readSse(res);
    assert.equal(frames.at(-1).data, '[DONE]');
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.data));
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null && c.object === 'chat.completion.chunk'));
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
    assert.equal(chunks.at(-1).usage.completion_tokens, 3);
    // What the fake received, as sent.
    assert.equal(fake.requests.length, 3);
    assert.equal(fake.requests[2].body.max_tokens, 3);
    assert.equal(fake.requests[2].headers.authorization, 'Bearer k');
  });
});

test('fake chat: tool calls stream in fragments and match the whole answer, refusals', async () => {
  await withFake({}, async (fake, client) => {
    const request = { model: 'fake-model', messages: [{ role: 'user', content: 'weather in Paris' }], tools: [weatherTool], tool_choice: 'required' };
    const whole = await client.chat.completions.create(request);
    assert.equal(whole.choices[0].finish_reason, 'tool_calls');
    const call = whole.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { input: 'weather in Paris' });
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let args = '';
    let fragments = 0;
    let name = null;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta.tool_calls ?? []) {
        if (tc.function?.name) name = tc.function.name;
        if (tc.function?.arguments) { args += tc.function.arguments; fragments += 1; }
      }
    }
    assert.equal(name, 'get_weather');
    assert.equal(args, call.function.arguments);
    assert.ok(fragments >= 2);
    fake.script({ refusal: true, text: 'I cannot help with that.' });
    const refused = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(refused.choices[0].message.refusal, 'I cannot help with that.');
    assert.equal(refused.choices[0].message.content, null);
  });
});

test('fake responses: SDK stream events in order, stored follow-ups, unknown id is 400, thin completed', async () => {
  await withFake({}, async (fake, client) => {
    const stream = await client.responses.create({ model: 'fake-model', input: 'first turn', stream: true });
    const types = [];
    let completed = null;
    let text = '';
    for await (const e of stream) {
      types.push(e.type);
      assert.equal(e.sequence_number, types.length - 1);
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') completed = e.response;
    }
    assert.deepEqual([...new Set(types)], ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added', 'response.output_text.delta', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done', 'response.completed']);
    assert.equal(completed.output[0].content[0].text, text);
    assert.equal(completed.output[0].content[0].text, 'echo:first_turn t1 t2 t3 t4 t5');
    const next = await client.responses.create({ model: 'fake-model', input: 'second', previous_response_id: completed.id });
    assert.equal(next.previous_response_id, completed.id);
    assert.equal(next.output_text, 'echo:second t1 t2 t3 t4 t5');
    await assert.rejects(client.responses.create({ model: 'fake-model', input: 'x', previous_response_id: 'resp_nope' }),
      (e) => e.status === 400 && e.code === 'previous_response_not_found' && e.param === 'previous_response_id');
    const unstored = await client.responses.create({ model: 'fake-model', input: 'x', store: false });
    await assert.rejects(client.responses.create({ model: 'fake-model', input: 'y', previous_response_id: unstored.id }), (e) => e.status === 400);
    // Tool calls as function_call items; a thin response.completed.
    fake.script({ thin_completed: true });
    const thin = await client.responses.create({ model: 'fake-model', input: 'w', tools: [{ type: 'function', name: 'get_weather', parameters: {} }],
                                                tool_choice: 'required', stream: true });
    let item = null;
    let final = null;
    for await (const e of thin) {
      if (e.type === 'response.output_item.done') item = e.item;
      if (e.type === 'response.completed') final = e.response;
    }
    assert.equal(item.type, 'function_call');
    assert.equal(item.name, 'get_weather');
    assert.deepEqual(final.output, []);
  });
});

test('fake embeddings (float and base64) and models', async () => {
  await withFake({ models: ['fake-model', 'fake-embed'] }, async (fake, client) => {
    const floats = await client.embeddings.create({ model: 'fake-embed', input: ['a', 'b'], encoding_format: 'float', dimensions: 4 });
    const decoded = await client.embeddings.create({ model: 'fake-embed', input: ['a', 'b'], dimensions: 4 });  // SDK asks base64
    assert.equal(fake.requests[1].body.encoding_format, 'base64');
    assert.deepEqual(decoded.data.map((d) => d.embedding), floats.data.map((d) => d.embedding));
    assert.notDeepEqual(floats.data[0].embedding, floats.data[1].embedding);
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    assert.deepEqual(models, ['fake-model', 'fake-embed']);
    assert.equal((await client.models.retrieve('fake-embed')).owned_by, 'fake');
    await assert.rejects(client.models.retrieve('nope'), (e) => e.status === 404);
  });
});

test('fake errors: envelopes and statuses, Retry-After honoured by the SDK, bad key, bad JSON', async () => {
  await withFake({ apiKey: 'right' }, async (fake, client) => {
    fake.script({ status: 429, retry_after: 0 });
    const retrying = new OpenAI({ apiKey: 'right', baseURL: fake.baseURL, maxRetries: 1 });
    const ok = await retrying.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.choices[0].finish_reason, 'stop');
    assert.equal(fake.generationRequests().length, 2);
    fake.script({ status: 429, retry_after: 7 });
    await assert.rejects(client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '7' && e.code === 'rate_limit_exceeded');
    fake.script({ status: 400, error: { message: 'Bad tools.', param: 'tools', code: 'invalid_value' } });
    await assert.rejects(client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'tools' && e.message.includes('Bad tools.'));
    fake.script({ status: 503 });
    await assert.rejects(client.responses.create({ model: 'fake-model', input: 'x' }), (e) => e.status === 503 && e.type === 'server_error');
    const wrong = new OpenAI({ apiKey: 'wrong', baseURL: fake.baseURL, maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
    const res = await fetch(`${fake.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer right' }, body: '{"model":' });
    assert.equal(res.status, 400);
    assert.deepEqual(Object.keys((await res.json()).error), ['message', 'type', 'param', 'code']);
    await assert.rejects(client.chat.completions.create({ model: 'fake-model', messages: [] }), (e) => e.param === 'messages');
  });
});

test('fake faults: mid-stream drop, in-stream errors and malformed SSE fail the SDK, an oversized line is valid JSON', async () => {
  await withFake({}, async (fake, client) => {
    const drain = async (p) => { let n = 0; for await (const c of await p) n += c.choices?.[0]?.delta?.content ? 1 : 0; return n; };
    const chat = () => client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], stream: true });
    fake.script({ drop_after: 2 });
    await assert.rejects(drain(chat()));
    fake.script({ error_after: 1 });
    await assert.rejects(drain(chat()), (e) => e instanceof OpenAI.APIError && /server had an error/.test(e.message));
    fake.script({ malformed: 'sse', malformed_after: 1 });
    await assert.rejects(drain(chat()));
    // An oversized line is valid JSON: only a line-length limit stops it.
    fake.script({ malformed: 'line', line_bytes: 300000, malformed_after: 1 });
    let long = '';
    for await (const c of await chat()) long += c.choices[0]?.delta?.content ?? '';
    assert.equal(long, `echo:x${'x'.repeat(300000)} t2 t3 t4 t5`);
    fake.script({ malformed: 'json' });
    await assert.rejects(client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }] }));
    fake.script({ error_after: 2 });
    const events = [];
    for await (const e of await client.responses.create({ model: 'fake-model', input: 'x', stream: true })) events.push(e);
    assert.equal(events.at(-1).type, 'response.failed');
    assert.equal(events.at(-1).response.error.code, 'server_error');
    assert.equal(events.filter((e) => e.type === 'response.output_text.delta').length, 2);
  });
});

test('fake timing: token pacing, stalls, slow reads, and aborts recorded on the test clock', async () => {
  await withFake({}, async (fake, client) => {
    fake.script({ first_token_ms: 150, interval_ms: 40, tokens: 4 });
    const t0 = performance.now();
    const at = [];
    for await (const c of await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], stream: true })) {
      if (c.choices[0]?.delta?.content) at.push(performance.now() - t0);
    }
    assert.equal(at.length, 4);
    assert.ok(at[0] >= 150, `first token after ${at[0]} ms`);
    // The pacing as the fake sent it (the client may read a late burst on a loaded machine).
    const paced = fake.requests.at(-1);
    assert.ok(paced.finishedAt - paced.firstByteAt >= 150 + 3 * 40 - 5, `sent over ${paced.finishedAt - paced.firstByteAt} ms`);

    // A client that leaves: the fake records when its request was aborted, also before the head.
    for (const stall of ['before_head', 'after_head', 'after_first']) {
      fake.script({ stall });
      const ac = new AbortController();
      const p = client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: stall }], stream: true }, { signal: ac.signal });
      const rec = () => fake.requests.at(-1);
      await fake.waitFor(() => rec()?.body?.messages?.[0].content === stall && (stall === 'before_head' || rec().firstByteAt !== null));
      if (stall !== 'before_head') { const s = await p; const it = s[Symbol.asyncIterator](); if (stall === 'after_first') await it.next(); }
      const leftAt = performance.now();
      ac.abort();
      await p.catch(() => {});
      await fake.waitFor(() => rec().abortedAt !== null, 5000, `abort recorded (${stall})`);
      assert.ok(rec().abortedAt >= leftAt);
      assert.equal(rec().finishedAt, null);
    }
    await fake.waitFor((f) => f.active() === 0);

    fake.script({ slow_read_ms: 200 });
    const s0 = performance.now();
    await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'slow' }] });
    assert.ok(performance.now() - s0 >= 200);
    assert.ok(fake.requests.at(-1).finishedAt - fake.requests.at(-1).receivedAt >= 200);
  });
});

test('WS fake: response.create streams events, previous_response_id is per socket, creates queue in order', async () => {
  const fake = await startResponsesWsFake({ apiKey: 'k' });
  const open = () => new WebSocket(fake.url, { headers: { authorization: 'Bearer k' } });
  try {
    const a = open();
    const ev = wsEvents(a);
    await ev.opened;
    a.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'hello' }));
    const first = await ev.until('response.completed');
    assert.deepEqual(first.map((e) => e.sequence_number), first.map((_, i) => i));
    assert.equal(first[0].type, 'response.created');
    const done = first.at(-1).response;
    assert.equal(done.output[0].content[0].text, 'turn1:echo:hello t1 t2 t3 t4 t5');
    // Two follow-ups at once: the second waits for the first; both continue the chain.
    a.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'again', previous_response_id: done.id }));
    a.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'more', previous_response_id: done.id }));
    const second = (await ev.until('response.completed')).at(-1).response;
    const third = (await ev.until('response.completed')).at(-1).response;
    assert.equal(second.output[0].content[0].text, 'turn2:echo:again t1 t2 t3 t4 t5');
    assert.equal(third.output[0].content[0].text, 'turn2:echo:more t1 t2 t3 t4 t5');
    // Another socket does not know the id.
    const b = open();
    const evb = wsEvents(b);
    await evb.opened;
    b.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'x', previous_response_id: done.id }));
    const [err] = await evb.until('error');
    assert.equal(err.status, 400);
    assert.deepEqual(err.error, { type: 'invalid_request_error', code: 'previous_response_not_found',
                                  message: `Previous response with id '${done.id}' not found.`, param: 'previous_response_id' });
    b.send('not json');
    assert.equal((await evb.until('error'))[0].status, 400);
    assert.deepEqual(fake.sockets.map((s) => s.creates.length), [3, 1]);
    assert.equal(fake.creates[3].error.code, 'previous_response_not_found');
    a.close(); b.close();
    await fake.waitFor((f) => f.openSockets() === 0);
    // A wrong key is refused at the upgrade.
    const bad = new WebSocket(fake.url, { headers: { authorization: 'Bearer nope' } });
    const status = await new Promise((resolve) => bad.on('unexpected-response', (_req, res) => resolve(res.statusCode)));
    assert.equal(status, 401);
  } finally {
    await fake.close();
  }
});

test('WS fake faults: error events, dropped sockets, malformed frames, thin completed, aborts recorded', async () => {
  const fake = await startResponsesWsFake();
  try {
    const run = async (behaviour, until) => {
      fake.script(behaviour);
      const ws = new WebSocket(fake.url);
      const ev = wsEvents(ws);
      await ev.opened;
      ws.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'x' }));
      return { ws, ev, events: until ? await ev.until(until) : null };
    };
    const e1 = await run({ error: { status: 429, message: 'Slow down.' } }, 'error');
    assert.deepEqual(e1.events[0], { type: 'error', status: 429, error: { type: 'requests', code: 'rate_limit_exceeded', param: null, message: 'Slow down.' } });
    e1.ws.close();
    const e2 = await run({ drop_after: 2 }, null);
    assert.equal(await e2.ev.closed, 1006);
    assert.equal(e2.ev.all.filter((e) => e.type === 'response.output_text.delta').length, 2);
    const e3 = await run({ malformed: 'frame', malformed_after: 1 }, null);
    await fake.waitFor(() => e3.ev.raw.some((r) => r.startsWith('{"type": "response.output_text.delta", "delta": ')));
    e3.ws.close();
    const e4 = await run({ thin_completed: true }, 'response.completed');
    assert.deepEqual(e4.events.at(-1).response.output, []);
    assert.equal(e4.events.filter((e) => e.type === 'response.output_item.done').length, 1);
    e4.ws.close();
    const e5 = await run({ stall: 'after_first' }, 'response.output_text.delta');
    e5.ws.terminate();
    await fake.waitFor(() => fake.creates.at(-1).abortedAt !== null);
  } finally {
    await fake.close();
  }
});

test('TLS: the fakes over HTTPS and WSS with an openssl-made CA, untrusted, expired and wrong-host certificates refused', async () => {
  const ca = makeTestCa();
  const fake = await startOpenAIFake({ tls: { key: ca.pem(ca.valid.key), cert: ca.pem(ca.valid.cert) } });
  const wsFake = await startResponsesWsFake({ tls: { key: ca.pem(ca.valid.key), cert: ca.pem(ca.valid.cert) } });
  const expired = await startOpenAIFake({ tls: { key: ca.pem(ca.expired.key), cert: ca.pem(ca.expired.cert) } });
  const wrong = await startOpenAIFake({ tls: { key: ca.pem(ca.wrongHost.key), cert: ca.pem(ca.wrongHost.cert) } });
  // The SDK in a child process: NODE_EXTRA_CA_CERTS is read once at start-up.
  const sdk = (baseURL, extraCa) => new Promise((resolve) => {
    const code = `import OpenAI from 'openai';
      const c = new OpenAI({ apiKey: 'k', baseURL: ${JSON.stringify(baseURL)}, maxRetries: 0 });
      c.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'tls' }] })
        .then((r) => console.log(r.choices[0].message.content), (e) => console.log('ERR', e.cause?.cause?.code ?? e.cause?.code ?? e.message));`;
    const env = { ...process.env };
    if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa; else delete env.NODE_EXTRA_CA_CERTS;
    execFile(process.execPath, ['--input-type=module', '-e', code], { env, cwd: process.cwd() }, (_e, out) => resolve(out.trim()));
  });
  try {
    assert.equal(await sdk(fake.baseURL, ca.caFile), 'echo:tls t1 t2 t3 t4 t5');
    assert.equal(await sdk(fake.ipBaseURL, ca.caFile), 'echo:tls t1 t2 t3 t4 t5');
    assert.match(await sdk(fake.baseURL, null), /^ERR (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
    assert.equal(await sdk(expired.baseURL, ca.caFile), 'ERR CERT_HAS_EXPIRED');
    assert.equal(await sdk(wrong.baseURL, ca.caFile), 'ERR ERR_TLS_CERT_ALTNAME_INVALID');
    const ws = new WebSocket(wsFake.url, { ca: ca.pem(ca.caFile) });
    const ev = wsEvents(ws);
    await ev.opened;
    ws.send(JSON.stringify({ type: 'response.create', model: 'm', input: 'secure' }));
    assert.equal((await ev.until('response.completed')).at(-1).response.output[0].content[0].text, 'turn1:echo:secure t1 t2 t3 t4 t5');
    ws.close();
  } finally {
    await Promise.all([fake.close(), wsFake.close(), expired.close(), wrong.close()]);
    ca.remove();
  }
});

test('harness: a black hole never connects, ringcast from a TOML config, a second ringcast on mock', async () => {
  const hole = await startBlackHole();
  try {
    const outcome = await new Promise((resolve) => {
      const s = net.connect(hole.port, '127.0.0.1');
      const timer = setTimeout(() => { s.destroy(); resolve('pending'); }, 500);
      s.on('connect', () => { clearTimeout(timer); s.destroy(); resolve('connected'); });
      s.on('error', (e) => { clearTimeout(timer); resolve(e.code); });
    });
    assert.equal(outcome, 'pending');
  } finally {
    await hole.close();
  }
  const upstream = await startMockUpstream(['--mock-tokens', '5']);
  const srv = await startRingcast({ config: { 'mock-tokens': 3, 'no-such-key': ['x'] } }).catch((e) => e);
  // no_such_key is not a config key ringcast knows: start-up fails and says where.
  assert.ok(srv instanceof Error && /ringcast exited/.test(srv.message) && /ringcast\.toml/.test(srv.message), String(srv));
  const ok = await startRingcast({ config: { 'mock-tokens': 3 } });
  try {
    const viaConfig = new OpenAI({ apiKey: 'k', baseURL: ok.baseURL, maxRetries: 0 });
    const viaUpstream = new OpenAI({ apiKey: 'k', baseURL: upstream.baseURL, maxRetries: 0 });
    const req = { model: 'ringcast-mock', messages: [{ role: 'user', content: 'count' }] };
    assert.equal((await viaConfig.chat.completions.create(req)).usage.completion_tokens, 3);
    assert.equal((await viaUpstream.chat.completions.create(req)).usage.completion_tokens, 5);
  } finally {
    await ok.stop();
    await upstream.stop();
  }
});
