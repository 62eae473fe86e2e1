// The Codex CLI (npm @openai/codex, pinned) as a real agent client: `codex exec` turns against
// ringcast's mock over /v1/responses (wire_api "responses": streaming, store: false, function,
// namespace and web_search tools, reasoning/include/client_metadata/prompt_cache_key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, postJson, waitFor } from './harness.mjs';
import { codexExec, codexHome } from './codex.mjs';

const MODEL = 'ringcast-mock';

async function withServer(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-codex-log-'));
  const logFile = path.join(dir, 'access.log');
  const srv = await startServer(['--access-log', logFile]);
  // Codex's streamed POSTs to /v1/responses, as the access log saw them (it flushes within 200 ms).
  const read = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '').split('\n')
    .filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.route === '/v1/responses' && r.protocol === 'sse');
  const requests = async (n) => {
    await waitFor(() => read().length >= n, 10000, `${n} access log lines`);
    return read();
  };
  try {
    await fn(srv, requests);
  } finally {
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// What the mock answers for a prompt whose last user turn is `text`.
async function mockText(srv, text) {
  const r = await postJson(srv.url('/v1/responses'), { model: MODEL, input: text });
  assert.equal(r.status, 200);
  return r.json.output[0].content[0].text;
}

function assertCompleted(run) {
  assert.equal(run.code, 0, `codex exec failed:\n${run.stderr}\n${run.stdout}`);
  const types = run.events.map((e) => e.type);
  assert.ok(types.includes('turn.completed'), types.join(','));
  assert.ok(!types.includes('turn.failed'), run.stdout);
  assert.ok(!run.events.some((e) => e.type === 'error'), run.stdout);
}

test('codex exec completes a turn on mock', async () => {
  await withServer(async (srv, requests) => {
    const run = await codexExec({ baseUrl: srv.url('/v1'), model: MODEL, prompt: 'Say hello' });
    assertCompleted(run);
    assert.equal(run.agentText(), await mockText(srv, 'Say hello'));
    const done = run.events.find((e) => e.type === 'turn.completed');
    assert.equal(done.usage.output_tokens, 16);
    const turns = await requests(1);
    assert.equal(turns.length, 1, JSON.stringify(turns));
    assert.deepEqual([turns[0].protocol, turns[0].status], ['sse', 200]);
  });
});

test('codex exec runs the tool the mock calls and ends the turn with text', async () => {
  await withServer(async (srv, requests) => {
    // The prompt names one of Codex's own tools (get_goal, no side effects): the mock calls it,
    // Codex runs it and sends the output back, and the mock answers in text.
    const run = await codexExec({ baseUrl: srv.url('/v1'), model: MODEL, prompt: 'Please call get_goal now' });
    assertCompleted(run);
    assert.equal(run.agentText(), await mockText(srv, 'Please call get_goal now'));
    const turns = await requests(2);
    assert.equal(turns.length, 2, JSON.stringify(turns));
    assert.ok(turns.every((r) => r.status === 200 && r.protocol === 'sse'), JSON.stringify(turns));
  });
});

test('codex exec resume continues the session', async () => {
  await withServer(async (srv, requests) => {
    const home = codexHome(srv.url('/v1'), MODEL);
    try {
      const first = await codexExec({ baseUrl: srv.url('/v1'), model: MODEL, prompt: 'First question', home });
      assertCompleted(first);
      // The second turn sends the whole history back (store is false): messages of both roles.
      const second = await codexExec({ baseUrl: srv.url('/v1'), model: MODEL, prompt: 'Second question',
                                       home, resume: true });
      assertCompleted(second);
      assert.equal(second.agentText(), await mockText(srv, 'Second question'));
      const turns = await requests(2);
      assert.equal(turns.length, 2, JSON.stringify(turns));
      assert.ok(turns[1].bytes_in > turns[0].bytes_in);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
