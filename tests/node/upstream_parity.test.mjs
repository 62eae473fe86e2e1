// Parity: the same scenarios against ringcast's mock directly and through ringcast → ringcast
// (the second one on mock, the first routing every model to it) give the same client-visible
// transcripts: statuses, content types, SSE frames and JSON bodies, with ids and times
// normalized. Over the relay, chat and Responses are passed through (api = "both"); the WS
// actions go through the typed events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startMockUpstream, startRingcast } from './fakes/ringcast.mjs';
import { parseSse } from './fakes/clients.mjs';

const MOCK = ['--mock-tokens', '8'];

// Ids and times differ run to run: ids become <kind#n> by order of first appearance, times 0.
function normalizer() {
  const seen = new Map();
  const id = (s) => s.replace(/\b(chatcmpl-|resp_|msg_|fc_|call_|rs_)[A-Za-z0-9_-]+/g, (m, kind) => {
    if (!seen.has(m)) seen.set(m, `<${kind}${seen.size}>`);
    return seen.get(m);
  });
  const walk = (v) => {
    if (typeof v === 'string') return id(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ['created', 'created_at', 'completed_at', 'uptime_s'].includes(k) && typeof x === 'number' ? 0 : walk(x)]));
    }
    return v;
  };
  return walk;
}

async function httpTranscript(base, path, body, norm) {
  const res = await fetch(`${base}${path}`, { method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json' },
                                             body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  const type = res.headers.get('content-type');
  let payload;
  if (type?.startsWith('text/event-stream')) {
    payload = parseSse(text).map((f) => ({ event: f.event, data: f.data === '[DONE]' ? f.data : norm(JSON.parse(f.data)) }));
  } else {
    payload = norm(JSON.parse(text));
  }
  return { path, status: res.status, type, payload };
}

async function wsTranscript(base, action, payload, norm) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const events = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no end of ${action}`)), 20000);
    ws.on('message', (d) => {
      const e = JSON.parse(d.toString());
      events.push(norm(e));
      if (['chat.complete', 'response.completed', 'embedding.result', 'error'].includes(e.event)) { clearTimeout(timer); resolve(); }
    });
    ws.send(JSON.stringify({ id: 'p1', action, payload }));
  });
  ws.terminate();
  return { action, events };
}

async function scenarios(base) {
  const norm = normalizer();
  const out = [];
  const chat = { model: 'ringcast-mock', messages: [{ role: 'user', content: 'parity please' }], seed: 11 };
  out.push(await httpTranscript(base, '/v1/chat/completions', chat, norm));
  out.push(await httpTranscript(base, '/v1/chat/completions', { ...chat, stream: true }, norm));
  out.push(await httpTranscript(base, '/v1/chat/completions', { ...chat, stream: true, stream_options: { include_usage: true }, n: 2, max_tokens: 5 }, norm));
  out.push(await httpTranscript(base, '/v1/chat/completions', { ...chat, tools: [{ type: 'function', function: { name: 'word_count', parameters: { type: 'object', properties: { text: { type: 'string' } } } } }], tool_choice: 'required', stream: true }, norm));
  const first = await httpTranscript(base, '/v1/responses', { model: 'ringcast-mock', input: 'first turn', instructions: 'Be kind.' }, norm);
  out.push(first);
  const firstId = [...JSON.stringify(first.payload).matchAll(/"id":"(<resp_\d+>)"/g)][0];
  assert.ok(firstId, 'a response id');
  out.push(await httpTranscript(base, '/v1/responses', { model: 'ringcast-mock', input: 'streamed turn', stream: true }, norm));
  out.push(await httpTranscript(base, '/v1/embeddings', { model: 'ringcast-mock', input: ['a', 'b c'], dimensions: 6 }, norm));
  out.push(await httpTranscript(base, '/v1/chat/completions', { model: 'ringcast-mock', messages: 'not a list' }, norm));
  out.push(await wsTranscript(base, 'chat.completion', chat, norm));
  out.push(await wsTranscript(base, 'responses.create', { model: 'ringcast-mock', input: 'over ws' }, norm));
  return out;
}

test('parity: mock directly and ringcast to ringcast give the same transcripts', async () => {
  const direct = await startMockUpstream(MOCK);
  const upstream = await startMockUpstream(MOCK);
  const relay = await startRingcast({ config: {
    upstreams: [{ name: 'inner', kind: 'openai', endpoints: [upstream.baseURL], api: 'both' }],
    models: [{ name: 'ringcast-mock', upstream: 'inner', upstream_model: 'ringcast-mock' }] } });
  try {
    const want = await scenarios(direct.url(''));
    const got = await scenarios(relay.url(''));
    const differ = [];
    for (let i = 0; i < want.length; i++) {
      try { assert.deepEqual(got[i], want[i]); } catch (e) { differ.push(`scenario ${i} (${want[i].path ?? want[i].action}):\n${e.message}`); }
    }
    assert.deepEqual(differ, []);
  } finally {
    await relay.stop();
    await upstream.stop();
    await direct.stop();
  }
});
