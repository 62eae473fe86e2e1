// Parity (parity.mjs): each engine that is ringcast's mock gives the golden transcripts
// (tests/golden/parity/) on every front, one test per engine; and the comparison itself reports
// a difference with its engine, scenario, front, path and a diff. Regenerate the goldens with
// `node tests/node/parity.mjs --update` (tests/README.md, "Parity").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cases, compare, readGoldens, runEngine, staleGoldens } from './parity.mjs';

async function check(engine) {
  const goldens = readGoldens();
  const missing = cases().filter((c) => !goldens.has(c.file)).map((c) => c.file);
  assert.deepEqual(missing, [], 'golden files missing: run node tests/node/parity.mjs --update');
  const problems = compare(goldens, await runEngine(engine), { engine });
  assert.ok(problems.length === 0, `${problems.length} transcript(s) differ from the goldens:\n${problems.join('\n')}`);
}

test('parity: the mock engine gives the golden transcripts', async () => {
  assert.deepEqual(staleGoldens(), [], 'golden files of no scenario: run node tests/node/parity.mjs --update');
  await check('mock');
});

test('parity: an openai upstream (ringcast to ringcast on mock) gives the golden transcripts', async () => {
  await check('openai');
});

test('parity: a jsonrpc upstream (the reference worker mock_worker.py) gives the golden transcripts', async () => {
  await check('jsonrpc');
});

test('parity: a jsonrpc upstream on two shards, its worker on shard 0, gives the golden transcripts', async () => {
  await check('jsonrpc_cross_shard');
});

test('parity: a difference names the engine, scenario, front and path and shows a diff', () => {
  const goldens = readGoldens();
  const file = 'tool_call.chat_sse.json';
  const got = new Map([...goldens].map(([f, t]) => [f, structuredClone(t)]));
  const events = got.get(file).exchanges[0].events;
  const k = events.findIndex((e) => e.data?.choices?.[0]?.delta?.tool_calls);
  assert.ok(k >= 0, 'a tool call chunk in the golden');
  events[k].data.choices[0].delta.tool_calls[0].function.name = 'get_wether';
  got.delete('errors.ws_chat.json');
  const problems = compare(goldens, got, { engine: 'someengine' });
  assert.equal(problems.length, 2, problems.join('\n'));
  const [diff, missing] = problems;
  assert.match(diff, new RegExp(`^someengine: scenario tool_call, front chat_sse: first difference at \\$\\.exchanges\\[0\\]\\.events\\[${k}\\]\\.data\\.choices\\[0\\]\\.delta\\.tool_calls\\[0\\]\\.function\\.name\n`));
  assert.match(diff, /^--- golden tool_call\.chat_sse\.json\n\+\+\+ someengine tool_call\.chat_sse\.json\n@@ -\d+,7 \+\d+,7 @@\n/m);
  assert.match(diff, /^- +"name": "get_weather"\n\+ +"name": "get_wether"$/m);
  assert.equal(missing, 'someengine: errors.ws_chat.json: no transcript');
  assert.deepEqual(compare(goldens, goldens, { engine: 'same' }), []);
});
