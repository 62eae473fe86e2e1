// Set-ups the end-to-end upstream suites share: a fake upstream plus a ringcast routing models
// to it (config written as TOML), the official SDK pointed at ringcast, and a client for the
// `/ws` actions. Every helper stops what it started, also when the test fails.
import OpenAI from 'openai';
import WebSocket from 'ws';
import { startOpenAIFake } from './openai-fake.mjs';
import { startRingcast } from './ringcast.mjs';
import { wireRecorder } from '../ringcast_schemas.mjs';

export const UPSTREAM_KEY = 'upstream-secret-key';
export const CLIENT_KEY = 'client-secret-key';

// An [[upstreams]] table for an OpenAI-compatible upstream at `baseURL`.
export function openaiUpstream(name, baseURL, extra = {}) {
  return { name, kind: 'openai', endpoints: [baseURL], api_key_env: 'FAKE_UPSTREAM_KEY', api: 'chat',
           retries_max: 2, backoff_base_ms: 10, backoff_cap_ms: 50, ...extra };
}

// Starts a fake (options for startOpenAIFake) and ringcast with `upstreams(fake)` and `models`
// (arrays of tables), runs fn({fake, srv, client}) and stops both.
export async function withUpstream({ fakeOptions = {}, upstreams, models, args = [], shards = 1 }, fn) {
  const fake = await startOpenAIFake({ apiKey: UPSTREAM_KEY, ...fakeOptions });
  let srv = null;
  try {
    srv = await startRingcast({ config: { upstreams: upstreams(fake), models }, env: { FAKE_UPSTREAM_KEY: UPSTREAM_KEY },
                                args, shards });
    const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: srv.baseURL, maxRetries: 0, timeout: 30000 });
    await fn({ fake, srv, client });
  } finally {
    if (srv) await srv.stop();
    await fake.close();
  }
}

// One `/ws` action: sends {id, action, payload} and resolves with the events of that id up to
// and including the first whose event is in `until` (default: the terminal ones). Every message
// ringcast sends on the socket is validated against docs/schemas/ws: rejects when one fails.
export async function wsAction(url, action, payload, { until = ['chat.complete', 'error', 'response.completed', 'embedding.result', 'response.failed'], timeoutMs = 20000 } = {}) {
  const ws = new WebSocket(url);
  try {
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const events = [];
    const wire = wireRecorder();
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no terminal event for ${action}: ${JSON.stringify(events).slice(0, 500)}`)), timeoutMs);
      ws.on('message', (data) => {
        const e = wire.ws(JSON.parse(data.toString()));
        if (e.id !== 'req-1') return;
        events.push(e);
        if (until.includes(e.event)) { clearTimeout(timer); resolve(events); }
      });
      ws.once('close', () => { clearTimeout(timer); reject(new Error(`socket closed during ${action}`)); });
    });
    ws.send(JSON.stringify({ id: 'req-1', action, payload }));
    await done;
    wire.assertValid();
    return events;
  } finally {
    ws.terminate();
  }
}

// Events of the Responses WebSocket mode (GET /v1/responses upgraded) for one response.create.
export async function responsesWs(url, body, { timeoutMs = 20000 } = {}) {
  const ws = new WebSocket(url);
  try {
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const events = [];
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no terminal event: ${JSON.stringify(events).slice(0, 500)}`)), timeoutMs);
      ws.on('message', (data) => {
        const e = JSON.parse(data.toString());
        events.push(e);
        if (['response.completed', 'response.failed', 'response.incomplete', 'error'].includes(e.type)) { clearTimeout(timer); resolve(events); }
      });
    });
    ws.send(JSON.stringify({ type: 'response.create', ...body }));
    return await done;
  } finally {
    ws.terminate();
  }
}

export async function metrics(srv) {
  return (await fetch(srv.url('/metrics'))).text();
}

// sum() of a metric over its samples (harness.mjs).
export { metricSum } from '../harness.mjs';
