// End to end: ringcast in front of a Responses-over-WebSocket upstream (kind "responses-ws", the
// fakes' Responses-WS fake), driven by the official SDK, the Responses WebSocket mode and the
// `/ws` actions: stateless, backfill of a thin response.completed, and stateful (retained
// sockets) with follow-ups reusing their socket, also from other shards. Refusals and failures:
// upstream_responses_ws_errors.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startResponsesWsFake } from './fakes/responses-ws-fake.mjs';
import { startRingcast } from './fakes/ringcast.mjs';
import { metrics, metricSum, responsesWs, wsAction } from './fakes/upstream-setup.mjs';

const KEY = 'ws-upstream-key';

async function withWsUpstream({ stateful = true, extra = {}, shards = 1 } = {}, fn) {
  const fake = await startResponsesWsFake({ apiKey: KEY });
  let srv = null;
  try {
    srv = await startRingcast({
      config: {
        upstreams: [{ name: 'ws-up', kind: 'responses-ws', endpoints: [fake.baseURL],
                      api_key_env: 'WS_UP_KEY', stateful, ...extra }],
        models: [{ name: 'ws-model', upstream: 'ws-up', upstream_model: 'fake-ws-model' }],
      },
      env: { WS_UP_KEY: KEY },
      shards,
    });
    const client = new OpenAI({ apiKey: 'client-key', baseURL: srv.baseURL, maxRetries: 0, timeout: 30000 });
    await fn({ fake, srv, client });
  } finally {
    if (srv) await srv.stop();
    await fake.close();
  }
}

const idPattern = /^resp_\d+_[0-9a-f]{16}$/;

function outputText(r) {
  return r.output.flatMap((i) => i.content ?? []).map((c) => c.text ?? '').join('');
}

test('responses-ws: a streamed response through ringcast, model mapped and the key from the config', async () => {
  await withWsUpstream({ stateful: false }, async ({ fake, client }) => {
    const stream = await client.responses.create({ model: 'ws-model', input: 'hello there', stream: true });
    const types = [];
    let text = '';
    let completed = null;
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') completed = e.response;
    }
    assert.equal(types[0], 'response.created');
    assert.ok(completed, `no response.completed in ${types}`);
    assert.match(completed.id, idPattern);
    assert.equal(completed.model, 'ws-model');
    assert.match(text, /^turn1:echo:hello_there/);
    assert.ok(completed.usage.output_tokens > 0);
    assert.equal(fake.creates.length, 1);
    assert.equal(fake.creates[0].body.model, 'fake-ws-model');
    assert.equal(fake.creates[0].body.stream, undefined);
    assert.equal(fake.upgrades[0].headers.authorization, `Bearer ${KEY}`);
  });
});

test('responses-ws: a thin response.completed is backfilled from output_item.done', async () => {
  await withWsUpstream({ stateful: false }, async ({ fake, client }) => {
    fake.script({ thin_completed: true, text: 'backfilled words' });
    const r = await client.responses.create({ model: 'ws-model', input: 'x' });
    assert.equal(r.status, 'completed');
    assert.equal(outputText(r), 'backfilled words');
  });
});

test('responses-ws: chat completions and the /ws action on a responses-ws upstream', async () => {
  await withWsUpstream({}, async ({ fake, srv, client }) => {
    const c = await client.chat.completions.create({ model: 'ws-model', messages: [{ role: 'user', content: 'from chat' }] });
    assert.match(c.choices[0].message.content, /^turn1:echo:from_chat/);
    assert.equal(c.choices[0].finish_reason, 'stop');
    const events = await wsAction(srv.url('/ws').replace('http', 'ws'), 'chat.completion',
                                  { model: 'ws-model', messages: [{ role: 'user', content: 'over ws' }] });
    const done = events.at(-1);
    assert.equal(done.event, 'chat.complete', JSON.stringify(events));
    assert.equal(fake.creates.length, 2);
  });
});

test('responses-ws stateful: a follow-up reuses the retained socket', async () => {
  await withWsUpstream({}, async ({ fake, srv, client }) => {
    const r1 = await client.responses.create({ model: 'ws-model', input: 'first' });
    assert.match(r1.id, idPattern);
    const r2 = await client.responses.create({ model: 'ws-model', input: 'second', previous_response_id: r1.id });
    assert.match(outputText(r2), /^turn2:/);
    const r3 = await client.responses.create({ model: 'ws-model', input: 'third', previous_response_id: r2.id, stream: true });
    let text = '';
    for await (const e of r3) if (e.type === 'response.output_text.delta') text += e.delta;
    assert.match(text, /^turn3:/);
    assert.equal(fake.sockets.length, 1, 'one upstream socket for the whole conversation');
    assert.equal(fake.creates[1].body.previous_response_id, fake.creates[0].responseId);
    assert.equal(fake.creates[2].body.previous_response_id, fake.creates[1].responseId);
    const m = await metrics(srv);
    assert.equal(metricSum(m, 'ringcast_upstream_session_followups_total', { outcome: 'reused' }), 2);
    assert.equal(metricSum(m, 'ringcast_upstream_sessions_idle'), 1);
    assert.equal(metricSum(m, 'ringcast_upstream_requests_total', { upstream: 'ws-up' }), 3);
    assert.equal(metricSum(m, 'ringcast_upstream_duration_seconds_count', { upstream: 'ws-up' }), 3);
  });
});

test('responses-ws stateful: follow-ups find their socket from any shard', async () => {
  await withWsUpstream({ shards: 4 }, async ({ fake, srv }) => {
    // Fresh connections land on any shard; each conversation stays on its first socket.
    for (let conv = 0; conv < 4; conv++) {
      let previous = null;
      for (let turn = 1; turn <= 3; turn++) {
        const c = new OpenAI({ apiKey: 'k', baseURL: srv.baseURL, maxRetries: 0, fetch: (url, init) => fetch(url, { ...init, keepalive: false }) });
        const body = { model: 'ws-model', input: `conv${conv} turn${turn}` };
        if (previous) body.previous_response_id = previous;
        const r = await c.responses.create(body);
        assert.match(outputText(r), new RegExp(`^turn${turn}:`), `conversation ${conv}`);
        previous = r.id;
      }
    }
    assert.equal(fake.sockets.length, 4);
    // The Responses WebSocket mode continues a conversation too.
    const events = await responsesWs(srv.url('/v1/responses').replace('http', 'ws'),
                                     { model: 'ws-model', input: 'ws mode' });
    const done = events.at(-1);
    assert.equal(done.type, 'response.completed', JSON.stringify(events).slice(0, 400));
    const more = await responsesWs(srv.url('/v1/responses').replace('http', 'ws'),
                                   { model: 'ws-model', input: 'ws mode again', previous_response_id: done.response.id });
    const text = more.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.match(text, /^turn2:/);
  });
});
