// The example worker of docs/workers.md (tests/workers/openai_http_worker.py: the ringcast
// dialect in front of an OpenAI-compatible HTTP server) driven over its pipes, with a ringcast on
// mock as the backend: what it streams back equals what the backend answers directly (text,
// tool calls, usage, embeddings), errors map to the dialect's codes, cancel stops a generate.
// The worker runs under tests/workers/tee.py, and every message of each conversation, as tee
// logged it, validates against docs/schemas/workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startMockUpstream } from './fakes/ringcast.mjs';
import { ConversationChecker } from './worker_schemas.mjs';

const WORKERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../workers');

// The worker under tee, spoken to line by line. next() waits (bounded) for its next message.
function startWorker(backendURL) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-worker-example-'));
  const log = path.join(dir, 'wire.jsonl');
  const child = spawn('python3', [path.join(WORKERS, 'tee.py'), '--log', log, '--',
    'python3', path.join(WORKERS, 'openai_http_worker.py')],
  { env: { ...process.env, BACKEND_URL: backendURL }, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const queue = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    w.received += 1;
    const m = JSON.parse(line);
    if (waiters.length) waiters.shift()(m); else queue.push(m);
  });
  let nextId = 0;
  let entries = null;
  const w = {
    sent: 0,
    received: 0,
    send: (m) => { w.sent += 1; child.stdin.write(`${JSON.stringify(m)}\n`); },
    request(method, params) { const id = nextId++; w.send({ jsonrpc: '2.0', id, method, params }); return id; },
    next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message from the worker within 20 s')), 20000);
      waiters.push((m) => { clearTimeout(timer); resolve(m); });
    })),
    // Messages up to and including the response to `id`.
    async until(id) {
      const got = [];
      for (;;) { const m = await w.next(); got.push(m); if (m.id === id && !m.method) return got; }
    },
    // Closes its stdin (the worker exits), returns what tee logged, [{dir, t, text}].
    async stop() {
      if (entries) return entries;
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
      entries = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      fs.rmSync(dir, { recursive: true, force: true });
      return entries;
    },
  };
  return w;
}

// Runs `fn(worker, backend, client)`, then checks the wire as tee logged it: every message sent
// and received is there, each validates against its schema. Returns the schemas seen (counts).
// `offDialect`: methods the test sends on purpose that the dialect does not have (not checked).
async function withWorker(backendArgs, fn, offDialect = []) {
  const backend = await startMockUpstream(backendArgs);
  const w = startWorker(backend.baseURL);
  try {
    const client = new OpenAI({ apiKey: 'k', baseURL: backend.baseURL, maxRetries: 0 });
    await fn(w, client);
    const entries = await w.stop();
    assert.equal(entries.filter((e) => e.dir === 'to_worker').length, w.sent);
    assert.equal(entries.filter((e) => e.dir === 'from_worker').length, w.received);
    const checker = new ConversationChecker();
    for (const e of entries) {
      const m = JSON.parse(e.text);
      if (!offDialect.includes(m.method)) checker.check(e.dir, m);
    }
    return Object.fromEntries(checker.seen);
  } finally {
    await w.stop();
    await backend.stop();
  }
}

async function handshake(w) {
  const id = w.request('initialize', { protocol_version: 1, client: { name: 'ringcast', version: 'test' },
    worker: { upstream: 'example', index: 0 }, capabilities: { cancel: true, ping: true } });
  const [answer] = await w.until(id);
  assert.equal(answer.result.protocol_version, 1);
  assert.deepEqual(answer.result.capabilities, { embeddings: true });
  w.send({ jsonrpc: '2.0', method: 'initialized', params: {} });
}

const generateParams = (request, extra = {}) => ({
  request_id: 'req_1', model: 'ringcast-mock', deadline_ms: null, api: 'chat', stream: true,
  messages: request.messages ?? [], tools: [], tool_choice: 'auto', parallel_tool_calls: true, n: 1,
  max_tokens: null, stop: [], seed: null, temperature: 1.0, top_p: 1.0, request, ...extra,
});

// Folds a generate's notifications into per-choice text and tool calls.
function fold(messages) {
  const out = { text: {}, calls: {}, finish: {}, result: null, error: null };
  for (const m of messages) {
    const p = m.params;
    if (m.method === 'generate/delta') out.text[p.choice] = (out.text[p.choice] ?? '') + p.text;
    else if (m.method === 'generate/tool_call') {
      const calls = (out.calls[p.choice] ??= []);
      if (p.call_id) calls[p.index] = { id: p.call_id, name: p.name, arguments: '' };
      calls[p.index].arguments += p.arguments;
    } else if (m.method === 'generate/done') out.finish[p.choice] = p.finish_reason;
    else if ('result' in m) out.result = m.result;
    else if ('error' in m) out.error = m.error;
  }
  return out;
}

const weather = { type: 'function', function: { name: 'get_weather', description: 'Current weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };

test('worker example: chat generates relay what the backend answers (text, tool calls, usage)', async () => {
  const seen = await withWorker(['--mock-tokens', '12'], async (w, client) => {
    await handshake(w);
    const request = { model: 'client-name', messages: [{ role: 'user', content: 'hello worker' }], n: 2 };
    const direct = await client.chat.completions.create({ ...request, model: 'ringcast-mock' });
    const got = fold(await w.until(w.request('generate', generateParams({ ...request, stream: true }, { n: 2 }))));
    assert.equal(got.error, null);
    assert.deepEqual(got.text, { 0: direct.choices[0].message.content, 1: direct.choices[1].message.content });
    assert.deepEqual(got.finish, { 0: 'stop', 1: 'stop' });
    assert.deepEqual(got.result, { usage: { prompt_tokens: direct.usage.prompt_tokens, completion_tokens: direct.usage.completion_tokens } });

    const tools = { model: 'client-name', messages: [{ role: 'user', content: 'weather in Paris?' }], tools: [weather], tool_choice: 'required' };
    const directTools = await client.chat.completions.create({ ...tools, model: 'ringcast-mock' });
    const gotTools = fold(await w.until(w.request('generate', generateParams(tools, { tool_choice: 'required' }))));
    assert.deepEqual(gotTools.calls[0], directTools.choices[0].message.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })));
    assert.deepEqual(gotTools.finish, { 0: 'tool_calls' });
    assert.equal(gotTools.result.usage.completion_tokens, directTools.usage.completion_tokens);
  });
  assert.equal(seen['generate.request'], 2);
  assert.equal(seen['generate.result'], 2);
  assert.ok(seen['generate.delta'] >= 2 && seen['generate.tool_call'] >= 1 && seen['generate.done'] === 3, JSON.stringify(seen));
});

test('worker example: a responses generate is rebuilt from the normalized messages', async () => {
  await withWorker(['--mock-tokens', '9'], async (w, client) => {
    await handshake(w);
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hi' }];
    const direct = await client.chat.completions.create({ model: 'ringcast-mock', messages, max_tokens: 5, seed: 3 });
    const got = fold(await w.until(w.request('generate', generateParams(
      { model: 'client-name', instructions: 'Be brief.', input: 'Say hi', max_output_tokens: 5 },
      { api: 'responses', messages, max_tokens: 5, seed: 3 }))));
    assert.equal(got.text[0], direct.choices[0].message.content);
    assert.deepEqual(got.finish, { 0: 'length' });
    assert.equal(got.result.usage.completion_tokens, 5);
  });
});

test('worker example: embed, ping, an unknown model, an unknown method, cancel', async () => {
  const seen = await withWorker(['--mock-tokens', '400', '--mock-tokens-per-s', '20'], async (w, client) => {
    await handshake(w);
    const direct = await client.embeddings.create({ model: 'ringcast-mock', input: ['a', 'b c'], dimensions: 4, encoding_format: 'float' });
    const [emb] = await w.until(w.request('embed', { request_id: '', model: 'ringcast-mock', input: ['a', 'b c'], dimensions: 4 }));
    assert.deepEqual(emb.result, { data: direct.data.map((d) => d.embedding), prompt_tokens: direct.usage.prompt_tokens });

    const [pong] = await w.until(w.request('ping', {}));
    assert.deepEqual(pong.result, {});

    const missing = fold(await w.until(w.request('generate', generateParams({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }, { model: 'no-such-model' }))));
    assert.equal(missing.error.code, -32004);
    assert.equal(missing.error.data.status, 404);
    assert.match(missing.error.message, /no-such-model/);

    const [unknown] = await w.until(w.request('summarize', {}));
    assert.equal(unknown.error.code, -32601);

    // A slow stream (20 tokens/s): cancelled after its first delta, answered with -32003.
    const id = w.request('generate', generateParams({ model: 'x', messages: [{ role: 'user', content: 'long story' }] }));
    const first = await w.next();
    assert.equal(first.method, 'generate/delta');
    w.send({ jsonrpc: '2.0', method: 'cancel', params: { id } });
    const rest = fold(await w.until(id));
    assert.equal(rest.error.code, -32003);
    assert.equal(rest.result, null);
  }, ['summarize']);
  assert.equal(seen['cancel.notification'], 1);
  assert.equal(seen['error.response'], 3);
  assert.equal(seen['embed.result'], 1);
  assert.equal(seen['ping.result'], 1);
});
