// The wire between a live ringcast and the reference worker, checked against the schemas of the
// `ringcast` dialect (docs/schemas/workers/): ringcast runs jsonrpc upstreams whose command is
// tests/workers/tee.py around tests/workers/mock_worker.py (both framings, two shards, two
// workers), clients make chat, responses, streamed, tool-call, multi-choice, embeddings, broker
// and abandoned requests, and every message tee logged, each way, must validate; every message kind
// of the dialect must have been seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { sleep } from './harness.mjs';
import { startRingcast } from './fakes/ringcast.mjs';
import { checkWire } from './check_wire.mjs';

const WORKERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../workers');

const upstream = (name, log, framing, workerArgs = []) => ({
  name, kind: 'jsonrpc', protocol: 'ringcast', framing, workers: 2, ping_interval_ms: 200,
  command: ['python3', path.join(WORKERS, 'tee.py'), '--log', log, '--framing', framing, '--',
    'python3', path.join(WORKERS, 'mock_worker.py'), '--framing', framing, '--mock-tokens', '12', ...workerArgs],
});

const weather = { type: 'function', function: { name: 'get_weather', description: 'Current weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };

async function until(what, fn, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { return await fn(); } catch (e) { if (Date.now() > deadline) throw new Error(`${what}: ${e.message}`); }
    await sleep(100);
  }
}

test('worker wire: every message between a live ringcast and the reference worker validates against the schemas', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-worker-wire-'));
  const logs = { lines: path.join(dir, 'lines.jsonl'), framed: path.join(dir, 'framed.jsonl'), slow: path.join(dir, 'slow.jsonl') };
  const srv = await startRingcast({
    shards: 2,
    config: {
      upstreams: [upstream('lines', logs.lines, 'lines'), upstream('framed', logs.framed, 'content-length'),
        upstream('slow', logs.slow, 'lines', ['--mock-tokens-per-s', '20', '--mock-tokens', '400'])],
      models: [{ name: 'small', upstream: 'lines' }, { name: 'framed', upstream: 'framed', upstream_model: 'small' },
        { name: 'slow', upstream: 'slow', upstream_model: 'small' }],
    },
  });
  let stopped = false;
  try {
    const client = new OpenAI({ apiKey: 'k', baseURL: srv.baseURL, maxRetries: 0, timeout: 20000 });
    for (const model of ['small', 'framed', 'slow'])
      await until(`${model} ready`, () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'ready?' }], max_tokens: 1 }));
    for (const model of ['small', 'framed']) {
      const chat = await client.chat.completions.create({ model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello' }], n: 2, seed: 7, stop: ['zzz'] });
      assert.equal(chat.choices.length, 2);
      let text = '';
      for await (const chunk of await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'stream' }], stream: true, stream_options: { include_usage: true } }))
        text += chunk.choices[0]?.delta?.content ?? '';
      assert.ok(text.length > 0);
      const tools = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'weather in Paris?' }], tools: [weather], tool_choice: 'required' });
      assert.equal(tools.choices[0].finish_reason, 'tool_calls');
      const resp = await client.responses.create({ model, instructions: 'Be brief.', input: 'hi', max_output_tokens: 16 });
      assert.ok(resp.output_text.length > 0);
      const events = [];
      for await (const ev of await client.responses.create({ model, input: [{ role: 'user', content: 'stream a response' }], stream: true, tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: {} } }] }))
        events.push(ev.type);
      assert.equal(events.at(-1), 'response.completed');
      const emb = await client.embeddings.create({ model, input: ['a', 'b c'], encoding_format: 'float' });
      assert.equal(emb.data.length, 2);
    }
    // A broker message (no client body: the generate's "request" is rebuilt).
    const queued = await (await fetch(srv.url('/api/v1/message'), { method: 'POST', body: JSON.stringify({ user_id: 'u1', message: 'Hello', max_tokens: 4, model: 'small' }) })).json();
    const lifecycle = await (await fetch(srv.url(`/api/v1/stream?user_id=u1&message_id=${queued.message_id}`))).text();
    assert.match(lifecycle, /event: done/);
    // An abandoned stream: ringcast sends cancel.
    const stream = await client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'a long story' }], stream: true });
    for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) break;  // the SDK closes the connection
    await until('the cancel logged', async () => { if (!fs.readFileSync(logs.slow, 'utf8').includes('"method\\":\\"cancel\\"')) throw new Error('not yet'); });
    await sleep(600);  // a few pings go by
    await srv.stop();
    stopped = true;

    const seen = {};
    for (const [name, file] of Object.entries(logs)) {
      const { failures, seen: s } = checkWire(fs.readFileSync(file, 'utf8'));
      assert.deepEqual(failures, [], `${name}: ${JSON.stringify(failures.slice(0, 5), null, 1)}`);
      for (const [k, n] of Object.entries(s)) seen[k] = (seen[k] ?? 0) + n;
    }
    for (const kind of ['initialize.request', 'initialize.result', 'initialized.notification', 'generate.request',
      'generate.delta', 'generate.tool_call', 'generate.done', 'generate.result', 'ping.request', 'ping.result',
      'embed.request', 'embed.result', 'cancel.notification'])
      assert.ok(seen[kind] > 0, `no ${kind} on the wire: ${JSON.stringify(seen)}`);
  } finally {
    if (!stopped) await srv.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
