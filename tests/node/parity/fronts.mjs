// The parity harness's fronts: one client per way of asking ringcast for a generation (chat JSON,
// chat SSE, /v1/responses JSON and SSE, the `/ws` actions chat.completion and responses.create,
// and the Responses WebSocket mode), and for embeddings (/v1/embeddings, `/ws` embedding.query). A client sends request bodies one after another (a WebSocket
// front keeps one connection for all of them, as an agent does) and records each exchange as
// data: the request, the status and content type (HTTP), and the JSON body or the events, raw
// (ids and times as received; normalize.mjs makes them comparable). Every wait is bounded.
import WebSocket from 'ws';
import { parseSse } from '../fakes/clients.mjs';

export const FRONTS = ['chat_json', 'chat_sse', 'responses_json', 'responses_sse', 'ws_chat', 'ws_responses', 'responses_ws'];
// Embeddings are not a generation: their own two fronts, used by their own scenario.
export const EMBEDDING_FRONTS = ['embeddings_json', 'ws_embeddings'];
export const STREAMING = new Set(['chat_sse', 'responses_sse', 'ws_chat', 'ws_responses', 'responses_ws']);
export const api = (front) => (front.startsWith('chat') || front === 'ws_chat' ? 'chat' : 'responses');

const TIMEOUT_MS = 20000;
// The events that end a generation on the WebSocket fronts.
const WS_END = new Set(['chat.complete', 'embedding.result', 'response.completed', 'response.incomplete', 'response.failed', 'error']);

function httpClient(base, path, stream) {
  return {
    async send(body) {
      const sent = stream ? { ...body, stream: true } : body;
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' },
                                                  body: JSON.stringify(sent), signal: AbortSignal.timeout(TIMEOUT_MS) });
      const text = await res.text();
      const type = res.headers.get('content-type');
      const out = { request: { method: 'POST', path, body: sent }, status: res.status, content_type: type };
      if (type?.startsWith('text/event-stream')) {
        out.events = parseSse(text).map((f) => {
          const e = {};
          if (f.event !== null) e.event = f.event;
          if (f.id !== null) e.id = f.id;
          e.data = f.data === '[DONE]' ? f.data : JSON.parse(f.data);
          return e;
        });
      } else {
        try { out.body = JSON.parse(text); } catch { out.body_text = text; }
      }
      return out;
    },
    close() {},
  };
}

// A WebSocket whose JSON text messages are queued; next(pred) takes messages up to and including
// the first for which pred is true.
async function wsClient(url) {
  const ws = new WebSocket(url);
  const inbox = [];
  let wake = null;
  let closed = null;
  ws.on('message', (d, binary) => { inbox.push(binary ? { binary: d.length } : JSON.parse(d.toString())); wake?.(); });
  ws.on('close', (code) => { closed = code; wake?.(); });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${url}: no WebSocket handshake`)), TIMEOUT_MS);
    ws.once('open', () => { clearTimeout(timer); resolve(); });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
  return {
    send: (obj) => ws.send(JSON.stringify(obj)),
    async take(isLast, what) {
      const out = [];
      const deadline = Date.now() + TIMEOUT_MS;
      for (;;) {
        while (inbox.length > 0) {
          const m = inbox.shift();
          out.push(m);
          if (isLast(m)) return out;
        }
        if (closed !== null) throw new Error(`${url}: closed (${closed}) before the end of ${what}: ${JSON.stringify(out).slice(0, 800)}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${url}: no end of ${what} within ${TIMEOUT_MS} ms: ${JSON.stringify(out).slice(0, 800)}`);
        await new Promise((resolve) => { const t = setTimeout(resolve, left); wake = () => { clearTimeout(t); resolve(); }; });
        wake = null;
      }
    },
    close: () => ws.terminate(),
  };
}

// `/ws`: each request gets its own id (r1, r2, …); the events of that id up to its end.
async function brokerClient(base, action) {
  const ws = await wsClient(`${base.replace(/^http/, 'ws')}/ws`);
  let n = 0;
  return {
    async send(payload) {
      const request = { id: `r${++n}`, action, payload };
      ws.send(request);
      const events = await ws.take((m) => m.id === request.id && WS_END.has(m.event), action);
      const stray = events.filter((m) => m.id !== request.id);
      if (stray.length > 0) throw new Error(`/ws: events of another request: ${JSON.stringify(stray).slice(0, 400)}`);
      return { request, events };
    },
    close: () => ws.close(),
  };
}

// The Responses WebSocket mode (GET /v1/responses upgraded): response.create messages.
async function responsesModeClient(base) {
  const ws = await wsClient(`${base.replace(/^http/, 'ws')}/v1/responses`);
  return {
    async send(body) {
      const request = { type: 'response.create', ...body };
      ws.send(request);
      return { request, events: await ws.take((m) => WS_END.has(m.type), 'response.create') };
    },
    close: () => ws.close(),
  };
}

export async function openFront(front, base) {
  switch (front) {
    case 'chat_json': return httpClient(base, '/v1/chat/completions', false);
    case 'chat_sse': return httpClient(base, '/v1/chat/completions', true);
    case 'responses_json': return httpClient(base, '/v1/responses', false);
    case 'responses_sse': return httpClient(base, '/v1/responses', true);
    case 'ws_chat': return brokerClient(base, 'chat.completion');
    case 'ws_responses': return brokerClient(base, 'responses.create');
    case 'responses_ws': return responsesModeClient(base);
    case 'embeddings_json': return httpClient(base, '/v1/embeddings', false);
    case 'ws_embeddings': return brokerClient(base, 'embedding.query');
    default: throw new Error(`unknown front ${front}`);
  }
}

// The `response` object an exchange on a Responses front produced (raw), or null: the body, or
// the `response` of its terminal event.
export function responseOf(exchange) {
  if (exchange.body?.object === 'response') return exchange.body;
  for (const e of [...(exchange.events ?? [])].reverse()) {
    const r = e.data?.response ?? e.response;
    if (r?.object === 'response') return r;
  }
  return null;
}
