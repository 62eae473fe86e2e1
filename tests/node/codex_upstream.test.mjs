// The Codex CLI (npm @openai/codex, pinned; see codex.mjs) through ringcast to an upstream:
// a second ringcast on mock speaking the Responses API (passthrough), and the fake upstream
// speaking only chat completions (ringcast translates Codex's Responses requests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { postJson } from './harness.mjs';
import { codexExec } from './codex.mjs';
import { startMockUpstream, startRingcast } from './fakes/ringcast.mjs';
import { UPSTREAM_KEY, openaiUpstream } from './fakes/upstream-setup.mjs';
import { startOpenAIFake } from './fakes/openai-fake.mjs';

const MODEL = 'ringcast-mock';

function assertCompleted(run) {
  assert.equal(run.code, 0, `codex exec failed:\n${run.stderr}\n${run.stdout}`);
  const types = run.events.map((e) => e.type);
  assert.ok(types.includes('turn.completed'), types.join(','));
  assert.ok(!types.includes('turn.failed') && !types.includes('error'), run.stdout);
}

async function viaMockUpstream(api, fn) {
  const upstream = await startMockUpstream();
  let srv = null;
  try {
    srv = await startRingcast({ config: {
      upstreams: [{ name: 'inner', kind: 'openai', endpoints: [upstream.baseURL], api }],
      models: [{ name: MODEL, upstream: 'inner', upstream_model: MODEL }] } });
    await fn(srv, upstream);
  } finally {
    if (srv) await srv.stop();
    await upstream.stop();
  }
}

test('codex exec through ringcast to a second ringcast on mock, Responses passed through', async () => {
  await viaMockUpstream('responses', async (srv, upstream) => {
    const run = await codexExec({ baseUrl: srv.url('/v1'), model: MODEL, prompt: 'Say hello through the relay' });
    assertCompleted(run);
    const direct = await postJson(upstream.url('/v1/responses'), { model: MODEL, input: 'Say hello through the relay' });
    assert.equal(run.agentText(), direct.json.output[0].content[0].text);
  });
});

test('codex exec through an upstream runs the tool the mock calls and ends with text', async () => {
  await viaMockUpstream('both', async (srv, upstream) => {
    const run = await codexExec({ baseUrl: srv.url('/v1'), model: MODEL, prompt: 'Please call get_goal now' });
    assertCompleted(run);
    const direct = await postJson(upstream.url('/v1/responses'), { model: MODEL, input: 'Please call get_goal now' });
    assert.equal(run.agentText(), direct.json.output[0].content[0].text);
    assert.ok(run.events.some((e) => e.type === 'item.completed' && e.item.type !== 'agent_message'), run.stdout);
  });
});

test('codex exec through ringcast to a chat-only upstream, Responses translated', async () => {
  const fake = await startOpenAIFake({ apiKey: UPSTREAM_KEY });
  let srv = null;
  try {
    srv = await startRingcast({ config: {
      upstreams: [openaiUpstream('fake', fake.baseURL, { api: 'chat' })],
      models: [{ name: 'gpt-codex-test', upstream: 'fake', upstream_model: 'fake-model' }] },
      env: { FAKE_UPSTREAM_KEY: UPSTREAM_KEY } });
    const run = await codexExec({ baseUrl: srv.url('/v1'), model: 'gpt-codex-test', prompt: 'Translate me' });
    assertCompleted(run);
    assert.equal(run.agentText(), 'echo:Translate_me t1 t2 t3 t4 t5');
    const rec = fake.generationRequests()[0];
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(rec.body.model, 'fake-model');
    assert.equal(rec.body.stream, true);
    assert.equal(rec.body.messages.at(-1).role, 'user');
  } finally {
    if (srv) await srv.stop();
    await fake.close();
  }
});
