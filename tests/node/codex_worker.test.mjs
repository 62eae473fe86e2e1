// The real Codex app server (npm @openai/codex, pinned) as a ringcast worker: the official
// openai SDK → ringcast B → `codex app-server` (a jsonrpc upstream, protocol codex-app-server,
// CODEX_HOME a temporary home) → ringcast A on mock (Codex's model provider) and back. What the
// client gets is what A's mock produced for Codex's request: the mock's text is a function of
// the last user turn, so a direct request to A with the same prompt gives the same text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { metricSum, postJson } from './harness.mjs';
import { CODEX_JS, codexHome } from './codex.mjs';
import { startMockUpstream, startRingcast } from './fakes/ringcast.mjs';

const MODEL = 'ringcast-mock';
let A = null;      // ringcast on mock: Codex's model provider
let slowA = null;  // the same, streaming slowly (for the cancel test)
let B = null;      // ringcast with the codex workers
let home = null;   // CODEX_HOME of the workers
let client = null;

function codexUpstream(name, extra = {}) {
  return {
    name, kind: 'jsonrpc', protocol: 'codex-app-server',
    command: [process.execPath, CODEX_JS, 'app-server'],
    env: { CODEX_HOME: home, RINGCAST_CODEX_KEY: 'sk-ringcast-test', NO_COLOR: '1' },
    cwd: path.join(home, 'work'),
    workers: 1,
    init_timeout_ms: 60000,
    ...extra,
  };
}

before(async () => {
  A = await startMockUpstream(['--model', MODEL]);
  slowA = await startMockUpstream(['--model', MODEL, '--mock-tokens', '3000', '--mock-tokens-per-s', '100']);
  home = codexHome(A.url('/v1'), MODEL);
  fs.mkdirSync(path.join(home, 'work'), { recursive: true });
  // The slow upstream's workers override the provider's URL on their command line.
  const slow = codexUpstream('codex-slow');
  slow.command = [...slow.command, '-c', `model_providers.ringcast.base_url=${JSON.stringify(slowA.url('/v1'))}`];
  B = await startRingcast({ config: {
    upstreams: [codexUpstream('codex'), codexUpstream('codex-retained', { retain_threads: true }), slow],
    models: [
      { name: 'codex', upstream: 'codex', upstream_model: MODEL },
      { name: 'codex-retained', upstream: 'codex-retained', upstream_model: MODEL },
      { name: 'codex-slow', upstream: 'codex-slow', upstream_model: MODEL },
      { name: 'codex-missing', upstream: 'codex', upstream_model: 'no-such-model' },
    ] } });
  // Ready once both codex workers answered initialize (/readyz says not ready until then).
  const deadline = Date.now() + 90000;
  for (;;) {
    const r = await fetch(B.url('/readyz'));
    if (r.status === 200) break;
    if (Date.now() > deadline) throw new Error(`B never became ready:\n${B.log()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  client = new OpenAI({ apiKey: 'k', baseURL: B.url('/v1'), maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (B) await B.stop();
  if (A) await A.stop();
  if (slowA) await slowA.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

// The mock's generations on `srv` that ended with `outcome` (started, completed, cancelled, …).
async function mockStreams(srv, outcome) {
  const text = await (await fetch(srv.url('/metrics'))).text();
  return metricSum(text, 'ringcast_engine_streams_total', { outcome });
}

// What A's mock answers for a conversation whose last user turn is `text`.
async function mockText(text) {
  const r = await postJson(A.url('/v1/responses'), { model: MODEL, input: text });
  assert.equal(r.status, 200);
  return r.json.output[0].content[0].text;
}

test('codex worker: chat completion (non-stream) is the mock text codex got, with usage', async () => {
  const r = await client.chat.completions.create({
    model: 'codex', messages: [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: 'Say hello' }],
  });
  assert.equal(r.choices[0].message.content, await mockText('Say hello'));
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.model, 'codex');
  assert.equal(r.usage.completion_tokens, 16);   // the mock's default answer
  assert.ok(r.usage.prompt_tokens > 100, JSON.stringify(r.usage));  // codex's own instructions
});

test('codex worker: chat completion stream delivers the text in deltas and usage last', async () => {
  const stream = await client.chat.completions.create({
    model: 'codex', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Stream a greeting' }],
  });
  let text = '';
  let deltas = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.content) { text += c.delta.content; deltas += 1; }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, await mockText('Stream a greeting'));
  assert.ok(deltas > 1, `${deltas} deltas`);
  assert.equal(finish, 'stop');
  assert.equal(usage?.completion_tokens, 16);
});

test('codex worker: responses stream', async () => {
  const stream = await client.responses.create({ model: 'codex', input: 'Tell me about responses', stream: true });
  let text = '';
  let completed = null;
  for await (const ev of stream) {
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') completed = ev.response;
  }
  assert.equal(text, await mockText('Tell me about responses'));
  assert.ok(completed, 'response.completed');
  assert.equal(completed.status, 'completed');
  assert.equal(completed.output_text ?? completed.output[0].content[0].text, text);
  assert.equal(completed.usage.output_tokens, 16);
  assert.ok(completed.usage.input_tokens > 100);
});

test('codex worker: earlier turns reach codex as history, the last user turn is the prompt', async () => {
  const r = await client.chat.completions.create({
    model: 'codex',
    messages: [{ role: 'user', content: 'My name is Ada' }, { role: 'assistant', content: 'Hello Ada' },
               { role: 'user', content: 'What is my name?' }],
  });
  // The mock answers the last user turn; a transcript folded into one prompt would differ.
  assert.equal(r.choices[0].message.content, await mockText('What is my name?'));
});

test('codex worker: a retained thread continues with previous_response_id', async () => {
  const sessions = () => {
    const dir = path.join(home, 'sessions');
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.jsonl'));
  };
  const before = sessions().length;
  const first = await client.responses.create({ model: 'codex-retained', input: 'First question' });
  assert.equal(first.output_text, await mockText('First question'));
  const second = await client.responses.create({ model: 'codex-retained', input: 'Second question',
                                                 previous_response_id: first.id });
  assert.equal(second.output_text, await mockText('Second question'));
  // One persistent Codex thread (one rollout file) served both: the second turn resumed it.
  assert.equal(sessions().length - before, 1, JSON.stringify(sessions()));
  const rollout = fs.readFileSync(path.join(home, 'sessions', sessions().at(-1)), 'utf8');
  assert.ok(rollout.includes('First question') && rollout.includes('Second question'));
});

test('codex worker: a model the provider does not have is 404 model_not_found', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'codex-missing', messages: [{ role: 'user', content: 'Hi' }] }),
    (e) => {
      assert.equal(e.status, 404, String(e));
      assert.equal(e.error?.code ?? e.code, 'model_not_found');
      return true;
    });
});

test('codex worker: a client that leaves mid-stream interrupts the codex turn', async () => {
  // The slow mock would stream for 30 s; only turn/interrupt makes codex drop it early.
  const controller = new AbortController();
  const stream = await client.chat.completions.create({
    model: 'codex-slow', stream: true, messages: [{ role: 'user', content: 'Tell me a long story' }],
  }, { signal: controller.signal });
  let text = '';
  try {
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (text.length > 0) controller.abort();  // the SDK ends the iteration (or throws)
    }
  } catch (e) {
    assert.ok(controller.signal.aborted, String(e));
  }
  assert.ok(text.length > 0);
  assert.equal(await mockStreams(slowA, 'started'), 1);
  const deadline = Date.now() + 15000;
  while (await mockStreams(slowA, 'cancelled') < 1) {
    assert.ok(Date.now() < deadline, 'codex kept streaming from its provider after the client left');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await mockStreams(slowA, 'completed'), 0);
});
