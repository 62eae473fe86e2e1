// Every JSON Schema under docs/schemas (all areas: ws, topics, broker, errors, ops, workers) with
// ajv's 2020-12 dialect in strict mode: each compiles, each valid example validates, each invalid
// example fails; each area's index.json routes to its schemas; the wire-log checker
// (ringcast_schemas.mjs) picks the right schema and fails what it must; docs/api.md links the
// areas. The live tests: every /ws action, topic SSE and broker SSE event a real ringcast sends
// validates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { wsAction } from './fakes/upstream-setup.mjs';
import { SCHEMAS_ROOT, WireChecker, loadAllSchemas, loadAreaIndex, parseSse, schemaErrors, wireRecorder } from './ringcast_schemas.mjs';
import { startServer, postJson, waitFor } from './harness.mjs';

const AREAS = fs.readdirSync(SCHEMAS_ROOT).filter((a) => fs.statSync(path.join(SCHEMAS_ROOT, a)).isDirectory());

test('schemas: every schema compiles in strict mode and has valid and invalid examples', () => {
  const schemas = loadAllSchemas();  // throws on an unknown keyword, a bad $ref, a strict-mode slip
  for (const area of ['ws', 'topics', 'broker', 'errors', 'workers'])
    assert.ok(AREAS.includes(area), `docs/schemas/${area} exists`);
  for (const [key, s] of Object.entries(schemas)) {
    assert.equal(s.schema.$schema, 'https://json-schema.org/draft/2020-12/schema', key);
    const ids = [`https://ringcast.dev/schemas/${s.area}/${s.name}.schema.json`, `urn:ringcast:schemas:${s.area}:${s.name}`];
    assert.ok(ids.includes(s.schema.$id), `${key}: $id ${s.schema.$id}`);
    assert.equal(typeof s.schema.title, 'string', `${key}: title`);
    assert.ok(s.valid.length > 0, `${key}: no valid example (${s.name}.valid.json or "examples")`);
    assert.ok(Array.isArray(s.invalid) && s.invalid.length > 0, `${key}: ${s.name}.invalid.json`);
  }
  // Nothing else lies in an area: schemas, their examples, index.json, README.md.
  for (const area of ['ws', 'topics', 'broker', 'errors', 'workers'])
    assert.ok(fs.existsSync(path.join(SCHEMAS_ROOT, area, 'README.md')), `${area}/README.md`);
  for (const area of AREAS) {
    for (const file of fs.readdirSync(path.join(SCHEMAS_ROOT, area))) {
      const m = /^(.*)\.(schema|valid|invalid)\.json$/.exec(file);
      if (file === 'index.json' || file === 'README.md') continue;
      assert.ok(m, `docs/schemas/${area}/${file}: not a schema, an example file, index.json or README.md`);
      assert.ok(schemas[`${area}/${m[1]}`], `docs/schemas/${area}/${file} belongs to no schema`);
    }
  }
});

test('schemas: every valid example validates and every invalid example fails', () => {
  let checked = 0;
  for (const [key, s] of Object.entries(loadAllSchemas())) {
    for (const [i, example] of s.valid.entries()) {
      assert.ok(s.validate(example), `${key} valid example ${i}: ${schemaErrors(s.validate)}`);
      checked++;
    }
    for (const entry of s.invalid) {
      assert.deepEqual(Object.keys(entry).sort(), ['message', 'why'], `${key}: invalid examples are {why, message}`);
      assert.equal(s.validate(entry.message), false, `${key}: "${entry.why}" validates: ${JSON.stringify(entry.message)}`);
      checked++;
    }
  }
  assert.ok(checked > 150, `only ${checked} examples`);
});

test('schemas: the indexes name every schema of ws, topics and broker, and the checker routes each example to it', () => {
  const schemas = loadAllSchemas();
  const named = (index) => {
    const out = [];
    const walk = (v) => { if (typeof v === 'string') out.push(v); else if (v && typeof v === 'object') Object.values(v).forEach(walk); };
    for (const [k, v] of Object.entries(index)) if (k !== 'description' && k !== 'ids') walk(v);
    return out;
  };
  for (const area of ['ws', 'topics', 'broker', 'ops']) {
    const names = new Set(named(loadAreaIndex(area)));
    const inArea = Object.values(schemas).filter((s) => s.area === area).map((s) => s.name);
    assert.deepEqual([...names].sort(), [...inArea].sort(), `${area}/index.json names each schema of the area`);
  }
  const checker = new WireChecker(schemas);
  const ws = loadAreaIndex('ws');
  for (const [action, name] of Object.entries(ws.requests))
    for (const m of schemas[`ws/${name}`].valid) assert.equal(checker.wsRequest(m), `ws/${name}`, action);
  for (const s of Object.values(schemas).filter((x) => x.area === 'ws' && x.name.endsWith('.event')))
    for (const m of s.valid) assert.equal(checker.entry({ kind: 'ws', route: '/ws', message: m }), `ws/${s.name}`);
  for (const [area, route] of [['topics', '/v1/topics/news/events?since=0'], ['broker', '/api/v1/stream?user_id=u1&message_id=m']]) {
    for (const name of Object.values(loadAreaIndex(area).sse))
      for (const m of schemas[`${area}/${name}`].valid) assert.equal(checker.entry({ kind: 'sse', route, message: m }), `${area}/${name}`);
  }
  // The ops stream's schemas describe an event's data only; its index says the id: line.
  const ops = loadAreaIndex('ops');
  assert.equal(ops.data_only, true);
  assert.deepEqual(Object.keys(ops.sse).sort(), Object.keys(ops.ids).sort(), 'ops/index.json: an id rule for each event');
  for (const m of schemas['ops/snapshot'].valid)
    assert.equal(checker.entry({ kind: 'sse', route: '/dashboard/ops', message: { event: 'snapshot', id: '7', data: m } }), 'ops/snapshot');
  for (const m of schemas['ops/draining'].valid)
    assert.equal(checker.entry({ kind: 'sse', route: '/dashboard/ops', message: { event: 'draining', data: m } }), 'ops/draining');
  const snap = schemas['ops/snapshot'].valid[0];
  const drain = schemas['ops/draining'].valid[0];
  assert.throws(() => checker.entry({ kind: 'sse', route: '/dashboard/ops', message: { event: 'snapshot', data: snap } }), /ops\/snapshot: the id: line must match/);
  assert.throws(() => checker.entry({ kind: 'sse', route: '/dashboard/ops', message: { event: 'snapshot', id: 'x7', data: snap } }), /ops\/snapshot: the id: line must match/);
  assert.throws(() => checker.entry({ kind: 'sse', route: '/dashboard/ops', message: { event: 'draining', id: '7', data: drain } }), /ops\/draining: 'draining' events have no id: line/);
  // Only index.sse routes: an HTTP body's schema never checks an SSE event of the same name.
  const acc = schemas['broker/accepted'].valid[0];
  for (const [route, event, data] of [['/api/v1/stream', 'accepted', acc], ['/api/v1/stream', 'cancelled', schemas['broker/cancelled'].valid[0]],
    ['/api/v1/stream', 'message.request', schemas['broker/message.request'].valid[0]], ['/v1/topics/a/events', 'published', schemas['topics/published'].valid[0]],
    ['/dashboard/ops', 'message', snap]])
    assert.throws(() => checker.entry({ kind: 'sse', route, message: { event, id: '1', data } }), new RegExp(`no schema for SSE event '${event}'`), `${route} ${event}`);
  // What has no schema, or fails its schema, throws.
  assert.throws(() => checker.entry({ kind: 'ws', route: '/ws', message: { id: 'a', event: 'chat.summary', data: {} } }), /no schema for event 'chat.summary'/);
  assert.throws(() => checker.entry({ kind: 'ws', route: '/ws', message: { id: 'a', event: 'published', data: { topic: 'x', seq: 1 } } }), /ws\/published.event: \/data must have required property 'id'/);
  assert.throws(() => checker.entry({ kind: 'sse', route: '/v1/topics/a/events', message: { event: 'hello', data: 1 } }), /no schema for SSE event 'hello'/);
  assert.throws(() => checker.entry({ kind: 'sse', route: '/v1/chat/completions', message: { event: 'message', data: 1 } }), /no schemas for the SSE route/);
  assert.throws(() => checker.entry({ kind: 'ws', route: '/echo', message: {} }), /no schemas for the WebSocket route/);
});

test('schemas: the wire-log checker reports each failing line and exits 1', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-wire-'));
  const file = path.join(dir, 'wire.jsonl');
  const line = (kind, route, message) => JSON.stringify({ kind, route, message });
  const good = [
    line('ws', '/ws', { id: 'p1', event: 'published', data: { topic: 'a', seq: 1, id: '0123abcd-1' } }),
    line('ws', '/ws', { event: 'flow.pause' }),
    line('sse', '/v1/topics/a/events', { event: 'message', id: '0123abcd-1', data: { x: 1 } }),
    line('sse', '/api/v1/stream?user_id=u&message_id=m', { event: 'progress', id: '3', data: { message_id: 'msg_0_0123456789abcdef', delta: 'x' } }),
  ];
  try {
    fs.writeFileSync(file, `${good.join('\n')}\n`);
    const ok = execFileSync(process.execPath, ['ringcast_schemas.mjs', file], { encoding: 'utf8' });
    assert.match(ok, /broker\/progress: 1\n/);
    assert.match(ok, /all 4 messages validate/);
    fs.writeFileSync(file, `${[...good,
      line('ws', '/ws', { id: 'p1', event: 'published', data: { topic: 'a', seq: '1', id: '0123abcd-1' } }),
      line('sse', '/v1/topics/a/events', { event: 'reset', id: '0123abcd-1', data: { topic: 'a', epoch: '0123abcd', seq: 1, oldest: 1 } }),
      line('ws', '/ws', { id: 'x', event: 'mystery' })].join('\n')}\n`);
    let bad = null;
    try { execFileSync(process.execPath, ['ringcast_schemas.mjs', file], { encoding: 'utf8' }); } catch (e) { bad = e; }
    assert.ok(bad, 'exit status 0 for a bad log');
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /wire\.jsonl:5: ws\/published\.event: \/data\/seq must be integer/);
    assert.match(bad.stdout, /wire\.jsonl:6: topics\/reset: \/ must NOT have additional properties/);
    assert.match(bad.stdout, /wire\.jsonl:7: \/ws: no schema for event 'mystery'/);
    assert.match(bad.stdout, /3 message\(s\) fail/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('schemas: wire.sseFetch validates each SSE event from its raw fields, whatever its type, before EventSource sees it', async () => {
  // The second message lost its id: line (EventSource would report the first one's id for it); a
  // reset without a listener is still checked, and so is an error event. Chunks split events.
  const body = 'retry: 200\n\n: ping\n\nevent: reset\ndata: {"topic":"a","epoch":"0123abcd","seq":0,"oldest":1}\n\n'
    + 'id: 0123abcd-1\ndata: {"n":1}\n\ndata: {"n":2}\n\nevent: error\ndata: {"code":"draining","message":"x","retry_after_ms":"1"}\n\n';
  const chunks = [body.slice(0, 40), body.slice(40, 131), body.slice(131)];
  const fakeFetch = async () => new Response(new ReadableStream({
    start(c) { for (const x of chunks) c.enqueue(new TextEncoder().encode(x)); c.close(); },
  }), { headers: { 'content-type': 'text/event-stream' } });
  const wire = wireRecorder({ fetch: fakeFetch });
  const res = await wire.sseFetch('http://127.0.0.1:1/v1/topics/a/events', {});
  assert.equal(await res.text(), body, 'the EventSource gets the body unchanged');
  assert.equal(wire.count, 4);
  assert.equal(wire.failures.length, 2, wire.failures.join('\n'));
  assert.match(wire.failures[0], /topics\/message: \/ must have required property 'id'/);
  assert.match(wire.failures[1], /topics\/error: /);
  assert.throws(() => wire.assertValid(), /2 of 4 messages fail their schema/);
  // Not an event stream (a refusal): passed through, nothing checked.
  const plain = wireRecorder({ fetch: async () => new Response('{"error":{}}', { status: 401, headers: { 'content-type': 'application/json' } }) });
  assert.equal((await plain.sseFetch('http://127.0.0.1:1/v1/topics/a/events', {})).status, 401);
  assert.equal(plain.count, 0);
});

test('schemas: wsAction (the upstream suites\' /ws client) validates every message it receives', async () => {
  // A stand-in server: answers the action with `reply`, preceded by a flow.pause for no id.
  const serve = async (reply) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (sock) => sock.on('message', () => {
      sock.send(JSON.stringify({ event: 'flow.pause' }));
      sock.send(JSON.stringify(reply));
    }));
    return { url: `ws://127.0.0.1:${wss.address().port}/ws`, close: () => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(r); }) };
  };
  const good = await serve({ id: 'req-1', event: 'error', error: { code: 'model_not_found', message: 'no model x' } });
  try {
    const events = await wsAction(good.url, 'chat.completion', { model: 'x', messages: [] });
    assert.deepEqual(events.map((e) => e.event), ['error']);
  } finally { await good.close(); }
  // An error with an empty code: wsAction rejects with the schema's reason.
  const bad = await serve({ id: 'req-1', event: 'error', error: { code: '', message: 'x' } });
  try {
    await assert.rejects(wsAction(bad.url, 'chat.completion', { model: 'x', messages: [] }), /1 of 2 messages fail their schema:\nws\/error.event: \/error\/code/);
  } finally { await bad.close(); }
});

test('schemas: docs/api.md links every area and docs/schemas/README.md lists every schema', () => {
  const api = fs.readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const readme = fs.readFileSync(path.join(SCHEMAS_ROOT, 'README.md'), 'utf8');
  assert.match(api, /\(schemas\/README\.md\)/);
  for (const area of AREAS) assert.ok(readme.includes(`(${area}/README.md)`), `docs/schemas/README.md links ${area}/README.md`);
  for (const s of Object.values(loadAllSchemas())) {
    if (!['ws', 'topics', 'broker', 'errors'].includes(s.area)) continue;  // workers and ops list theirs their way
    const areaReadme = fs.readFileSync(path.join(SCHEMAS_ROOT, s.area, 'README.md'), 'utf8');
    assert.ok(areaReadme.includes(`${s.name}.schema.json`), `${s.area}/README.md lists ${s.name}.schema.json`);
  }
});

// ---- live: what a real ringcast sends ----

// A /ws client that validates every message it receives (and records it).
async function wsClient(url, checker) {
  const ws = new WebSocket(url);
  const got = [];
  const failures = [];
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, false);
    const m = JSON.parse(data.toString());
    got.push(m);
    try { checker.wsEvent(m); } catch (e) { failures.push(e.message); }
  });
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  return {
    ws, got, failures,
    send(id, action, payload) {
      const m = payload === undefined ? { id, action } : { id, action, payload };
      checker.wsRequest(m);  // the requests we send follow their schemas too
      ws.send(JSON.stringify(m));
    },
    raw(text) { ws.send(text); },
    async until(pred, what) {
      try {
        await waitFor(() => got.some(pred), 15000, what);
      } catch (e) {
        throw new Error(`${e.message}; the last messages: ${got.slice(-3).map((m) => JSON.stringify(m).slice(0, 300)).join(' ')}`);
      }
      return got.find(pred);
    },
  };
}

const sseEvents = async (url, headers = {}) => {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(15000) });
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  return parseSse(await res.text());
};

test('schemas: every /ws event of every action validates against a live server', async () => {
  const srv = await startServer(['--ws-inflight-max', '2', '--topic-history', '4', '--mock-tokens-per-s', '200'], { shards: 2 });
  const checker = new WireChecker();
  try {
    const c = await wsClient(`ws://127.0.0.1:${srv.port}/ws`, checker);
    const ev = (id, event) => (m) => m.id === id && m.event === event;
    // Topics: subscribe, publish, message, reset (resume from before the history), unsubscribe.
    c.send('s1', 'subscribe', { topic: 'room.1' });
    await c.until(ev('s1', 'subscribed'), 'subscribed');
    for (let i = 0; i < 6; i++) {  // one at a time: --ws-inflight-max is 2
      c.send(`p${i}`, 'publish', { topic: 'room.1', data: { i, s: 'é✓' } });
      await c.until(ev(`p${i}`, 'published'), 'published');
    }
    await waitFor(() => c.got.filter(ev('s1', 'message')).length === 6, 15000, '6 messages');
    c.send('s2', 'subscribe', { topic: 'room.2' });
    await c.until(ev('s2', 'subscribed'), 'subscribed 2');
    c.send('s3', 'subscribe', { topic: 'room.1', since: 1 });
    await c.until(ev('s3', 'error'), 'already subscribed');
    c.send('u1', 'unsubscribe', { topic: 'room.1' });
    await c.until(ev('u1', 'unsubscribed'), 'unsubscribed');
    c.send('s4', 'subscribe', { topic: 'room.1', since: '1' });  // history holds 4 of 6: reset
    await c.until(ev('s4', 'reset'), 'reset');
    // Generations and the rest.
    c.send('c1', 'chat.completion', { model: 'ringcast-mock', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 3, n: 2 });
    await c.until(ev('c1', 'chat.complete'), 'chat.complete');
    c.send('c2', 'chat.completion', { model: 'ringcast-mock', tool_choice: 'required', messages: [{ role: 'user', content: 'add' }],
      tools: [{ type: 'function', function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer' } } } } }] });
    await c.until(ev('c2', 'chat.tool_call'), 'chat.tool_call');
    await c.until(ev('c2', 'chat.complete'), 'chat.complete 2');
    c.send('r1', 'responses.create', { model: 'ringcast-mock', input: 'Hello', max_output_tokens: 16 });
    await c.until(ev('r1', 'response.incomplete'), 'response.incomplete');
    c.send('r2', 'responses.create', { model: 'ringcast-mock', input: 'Hello' });
    await c.until(ev('r2', 'response.completed'), 'response.completed');
    c.send('e1', 'embedding.query', { model: 'ringcast-mock', input: ['a', 'b'], dimensions: 4 });
    await c.until(ev('e1', 'embedding.result'), 'embedding.result');
    c.send('e2', 'embedding.query', { model: 'ringcast-mock', input: 'a', encoding_format: 'base64' });
    await c.until(ev('e2', 'embedding.result'), 'embedding.result base64');
    c.send('t1', 'tool.invoke', { name: 'add', arguments: { a: 2, b: 3 } });
    await c.until(ev('t1', 'tool.result'), 'tool.result');
    c.send('h1', 'system.health', {});
    await c.until(ev('h1', 'system.health'), 'system.health');
    // A long generation, cancelled.
    c.send('c3', 'chat.completion', { model: 'ringcast-mock', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4000 });
    await c.until(ev('c3', 'chat.delta'), 'a delta');
    c.send('x1', 'cancel', { target: 'c3' });
    await c.until(ev('x1', 'cancelled'), 'cancelled');
    await c.until(ev('c3', 'error'), 'the cancelled stream ends with error');
    // Flow control: two long generations fill --ws-inflight-max 2.
    c.send('f1', 'chat.completion', { model: 'ringcast-mock', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4000 });
    c.send('f2', 'chat.completion', { model: 'ringcast-mock', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4000 });
    await c.until((m) => m.event === 'flow.pause', 'flow.pause');
    c.send('f3', 'tool.invoke', { name: 'now' });
    await c.until(ev('f3', 'error'), 'flow_paused');
    c.send('x2', 'cancel', { target: 'f1' });
    c.send('x3', 'cancel', { target: 'f2' });
    await c.until((m) => m.event === 'flow.resume', 'flow.resume');
    // Refusals and mistakes: each an error event.
    c.raw('not json');
    c.raw(JSON.stringify({ action: 'publish' }));
    c.raw(JSON.stringify({ id: 'b1', action: 'publish', payload: { topic: 'bad topic', data: 1 } }));
    c.send('b2', 'cancel', { target: 'nothing' });
    c.send('b3', 'message.stream', { user_id: 'u1', message_id: 'msg_0_0123456789abcdef' });
    c.send('b4', 'chat.completion', { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    c.raw(JSON.stringify({ id: 'b5', action: 'fly' }));
    await c.until(ev('b5', 'error'), 'unknown action');
    await c.until(ev('b3', 'error'), 'message_not_found');
    // The broker lifecycle over /ws, resumed with last_event_id.
    const { json: acc } = await postJson(srv.url('/api/v1/message'), { user_id: 'u1', message: 'Hello', max_tokens: 3 });
    checker.apply('broker/accepted', acc);
    c.send('m1', 'message.stream', { user_id: 'u1', message_id: acc.message_id });
    await c.until(ev('m1', 'done'), 'done');
    c.send('m2', 'message.stream', { user_id: 'u1', message_id: acc.message_id, last_event_id: '2' });
    await c.until(ev('m2', 'done'), 'done again');
    c.ws.close();
    assert.deepEqual(c.failures, []);
    const seen = [...checker.seen.keys()];
    for (const key of ['ws/subscribed.event', 'ws/message.event', 'ws/reset.event', 'ws/unsubscribed.event', 'ws/published.event',
      'ws/chat.delta.event', 'ws/chat.tool_call.event', 'ws/chat.complete.event', 'ws/response.event', 'ws/embedding.result.event',
      'ws/tool.result.event', 'ws/system.health.event', 'ws/cancelled.event', 'ws/flow.pause.event', 'ws/flow.resume.event',
      'ws/error.event', 'ws/lifecycle.event'])
      assert.ok(seen.includes(key), `no ${key} seen (${seen.join(', ')})`);
  } finally {
    await srv.stop();
  }
});

test('schemas: topic and broker SSE events and the HTTP answers validate against a live server', async () => {
  const srv = await startServer(['--topic-history', '2', '--mock-tokens-per-s', '200'], { shards: 2 });
  const checker = new WireChecker();
  try {
    for (let n = 1; n <= 3; n++) checker.apply('topics/published', (await postJson(srv.url('/v1/topics/news'), { n })).json);
    const url = srv.url('/v1/topics/news/events?since=0');
    // The stream does not end by itself: read it for a while through a short-lived connection.
    const ctl = new AbortController();
    const res = await fetch(url, { signal: ctl.signal });
    let text = '';
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    while ((text.match(/event: message/g) ?? []).length < 2) text += decoder.decode((await reader.read()).value, { stream: true });
    ctl.abort();
    const topicEvents = parseSse(text);
    assert.deepEqual(topicEvents.map((e) => e.event), ['reset', 'message', 'message']);
    for (const e of topicEvents) checker.sseEvent('/v1/topics/news/events', e);

    const { json: acc } = await postJson(srv.url('/api/v1/message'), { user_id: 'u9', message: 'Hello', max_tokens: 3 });
    checker.apply('broker/accepted', acc);
    const lifecycle = await sseEvents(srv.url(`/api/v1/stream?user_id=u9&message_id=${acc.message_id}`));
    assert.deepEqual([...new Set(lifecycle.map((e) => e.event))], ['queued', 'processing', 'progress', 'done']);
    for (const e of lifecycle) checker.sseEvent('/api/v1/stream', e);

    // A message cancelled while queued behind another one ends with an error event.
    const first = (await postJson(srv.url('/api/v1/message'), { user_id: 'u8', message: 'Hi', max_tokens: 4000 })).json;
    const second = (await postJson(srv.url('/api/v1/message'), { user_id: 'u8', message: 'Hi', max_tokens: 2 })).json;
    const del = await fetch(srv.url(`/api/v1/message/${second.message_id}?user_id=u8`), { method: 'DELETE' });
    checker.apply('broker/cancelled', await del.json());
    await fetch(srv.url(`/api/v1/message/${first.message_id}?user_id=u8`), { method: 'DELETE' });
    const cancelled = await sseEvents(srv.url(`/api/v1/stream?user_id=u8&message_id=${second.message_id}`));
    assert.equal(cancelled.at(-1).event, 'error');
    for (const e of cancelled) checker.sseEvent('/api/v1/stream', e);

    // Error envelopes of the routes.
    for (const [p, init] of [['/v1/nothing', {}], ['/api/v1/message', { method: 'POST', body: '{"user_id":"u1"}' }],
      ['/v1/topics/news/events?since=abc', {}], [`/api/v1/message/${first.message_id}?user_id=u8`, { method: 'DELETE' }]]) {
      const r = await fetch(srv.url(p), init);
      assert.ok(r.status >= 400, p);
      checker.apply('errors/error', await r.json());
    }
  } finally {
    await srv.stop();
  }
});
