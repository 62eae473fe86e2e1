// A fake OpenAI-compatible upstream over HTTP or HTTPS (Node `http`/`https`, nothing of
// ringcast's): POST /v1/chat/completions, POST /v1/responses (SSE and JSON, stored responses for
// previous_response_id), POST /v1/embeddings, GET /v1/models[/id]. It runs inside the test's
// process, so tests script it and read what it recorded directly.
//
// Behaviour of a generation request (chat, responses, embeddings) = defaults, then the entry
// for its model in `byModel`, then the next scripted entry (`script(...)`, consumed in arrival
// order), then the JSON of an `x-fake-behaviour` request header. Keys:
//   status, error {message,type,code,param}, retry_after (header, seconds), headers {…}
//   text | tokens (count), first_token_ms, interval_ms, tool_call {name, arguments}, refusal,
//   finish_reason, drop_after (tokens, then the socket is destroyed), error_after (tokens,
//   then an in-stream error: chat `data: {"error":…}`, responses `response.failed`),
//   malformed 'sse'|'json'|'line' (after `malformed_after` tokens: 'sse' = a data line that is
//   not JSON, then the end; 'json' = a truncated JSON body; 'line' = one valid event whose text
//   is `line_bytes` of "x", so its data line is that long, and the stream goes on), stall 'before_head'|'after_head'|'after_first' (nothing
//   more is sent; the request stays open until the client leaves), slow_read_ms (the request
//   body is read only after that delay), thin_completed (response.completed with output []).
//
// Recording: `requests` holds one entry per request, in arrival order: {seq, method, path,
// headers, rawBody, body, behaviour, receivedAt, firstByteAt, finishedAt, abortedAt} with
// times from performance.now() (the test's own clock). abortedAt is set when the client went
// away before the response ended. `active()` counts unfinished responses; `connections()` the
// open sockets.
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import * as S from './shapes.mjs';

const GENERATION_PATHS = new Set(['/v1/chat/completions', '/v1/responses', '/v1/embeddings']);

export async function startOpenAIFake({ tls = null, apiKey = null, models = ['fake-model'], defaults = {} } = {}) {
  const fake = new OpenAIFake({ apiKey, models, defaults });
  const handler = (req, res) => fake.handle(req, res);
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 30000;
  server.headersTimeout = 60000;
  server.requestTimeout = 0;
  server.on(tls ? 'secureConnection' : 'connection', (socket) => {
    fake.sockets.add(socket);
    fake.acceptedConnections += 1;
    socket.on('close', () => fake.sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.server = server;
  fake.port = server.address().port;
  const scheme = tls ? 'https' : 'http';
  fake.baseURL = `${scheme}://${tls ? 'localhost' : '127.0.0.1'}:${fake.port}/v1`;
  fake.ipBaseURL = `${scheme}://127.0.0.1:${fake.port}/v1`;
  return fake;
}

class OpenAIFake {
  constructor({ apiKey, models, defaults }) {
    this.apiKey = apiKey;
    this.models = models;
    this.defaults = defaults;
    this.byModel = {};
    this.queue = [];
    this.requests = [];
    this.responses = new Map();  // stored responses: id -> {body, output}
    this.sockets = new Set();
    this.acceptedConnections = 0;
    this.live = new Set();       // unfinished request records
  }

  // Queues behaviours for the next generation requests, one each, in arrival order.
  script(...behaviours) { this.queue.push(...behaviours); }
  active() { return this.live.size; }
  connections() { return this.sockets.size; }
  generationRequests() { return this.requests.filter((r) => GENERATION_PATHS.has(r.path)); }
  // Destroys every open connection (an upstream killed mid-stream).
  killAll() { for (const s of this.sockets) s.destroy(); }
  async waitFor(predicate, timeoutMs = 10000, what = 'a condition on the fake') {
    const deadline = performance.now() + timeoutMs;
    while (!predicate(this)) {
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  close() {
    this.killAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  handle(req, res) {
    const rec = { seq: this.requests.length, method: req.method, path: req.url.split('?')[0],
                  headers: req.headers, rawBody: '', body: null, behaviour: {},
                  receivedAt: performance.now(), firstByteAt: null, finishedAt: null, abortedAt: null };
    this.requests.push(rec);
    this.live.add(rec);
    const timers = new Set();
    const ctx = { req, res, rec, stopped: false,
                  later: (ms, fn) => { const t = setTimeout(() => { timers.delete(t); fn(); }, ms); timers.add(t); } };
    res.on('close', () => {
      if (!res.writableFinished && rec.abortedAt === null) rec.abortedAt = performance.now();
      ctx.stopped = true;
      for (const t of timers) clearTimeout(t);
      this.live.delete(rec);
    });
    res.on('finish', () => { rec.finishedAt = performance.now(); this.live.delete(rec); });
    const origWriteHead = res.writeHead.bind(res);
    res.writeHead = (...a) => { if (rec.firstByteAt === null) rec.firstByteAt = performance.now(); return origWriteHead(...a); };

    let behaviour = { ...this.defaults };
    if (GENERATION_PATHS.has(rec.path) && req.method === 'POST') {
      const next = this.queue.shift();
      if (next) behaviour = { ...behaviour, ...next };
    }
    const header = req.headers['x-fake-behaviour'];
    if (header) {
      try { behaviour = { ...behaviour, ...JSON.parse(header) }; } catch { /* ignored: a bad header is no script */ }
    }
    const readBody = () => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        rec.rawBody = Buffer.concat(chunks).toString();
        this.route(ctx, behaviour);
      });
    };
    if (behaviour.slow_read_ms) {
      req.pause();
      ctx.later(behaviour.slow_read_ms, () => { req.resume(); readBody(); });
    } else {
      readBody();
    }
  }

  route(ctx, scripted) {
    const { req, res, rec } = ctx;
    if (this.apiKey !== null && req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return sendJson(res, 401, S.errorEnvelope(S.defaultError(401)));
    }
    if (req.method === 'GET' && rec.path === '/v1/models') {
      return sendJson(res, 200, { object: 'list', data: this.models.map(modelObject) });
    }
    if (req.method === 'GET' && rec.path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(rec.path.slice('/v1/models/'.length));
      if (!this.models.includes(id)) return sendJson(res, 404, S.errorEnvelope({ ...S.defaultError(404), param: 'model' }));
      return sendJson(res, 200, modelObject(id));
    }
    if (req.method !== 'POST' || !GENERATION_PATHS.has(rec.path)) {
      return sendJson(res, 404, S.errorEnvelope({ message: `Invalid URL (${req.method} ${rec.path})` }));
    }
    try {
      rec.body = JSON.parse(rec.rawBody);
    } catch {
      return sendJson(res, 400, S.errorEnvelope({
        message: 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly.)' }));
    }
    const behaviour = { ...(this.byModel[rec.body?.model] ?? {}), ...scripted };
    rec.behaviour = behaviour;
    const invalid = validate(rec.path, rec.body, this.responses);
    if (invalid) return sendJson(res, invalid.status, S.errorEnvelope(invalid.error));
    if (behaviour.stall === 'before_head') return undefined;
    if (behaviour.status && behaviour.status >= 400) {
      const headers = { ...(behaviour.headers ?? {}) };
      if (behaviour.retry_after !== undefined) headers['retry-after'] = String(behaviour.retry_after);
      return sendJson(res, behaviour.status, S.errorEnvelope({ ...S.defaultError(behaviour.status), ...(behaviour.error ?? {}) }), headers);
    }
    if (rec.path === '/v1/embeddings') return sendJson(res, 200, S.embeddingsList(rec.body), behaviour.headers);
    if (rec.path === '/v1/chat/completions') return this.chat(ctx, behaviour);
    return this.respond(ctx, behaviour);
  }

  chat(ctx, behaviour) {
    const { res, rec } = ctx;
    const body = rec.body;
    const meta = { id: S.randomId('chatcmpl-fake'), created: S.nowSeconds(), model: behaviour.response_model ?? body.model };
    const n = body.n ?? 1;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? null;
    const plans = Array.from({ length: n }, () => S.planGeneration(body, behaviour, { maxTokens }));
    if (!body.stream) {
      return this.whole(ctx, behaviour, () => S.chatCompletion(meta, plans, body));
    }
    const includeUsage = Boolean(body.stream_options?.include_usage);
    // Per step, one chunk per choice: the deltas of all choices interleave like the real API's.
    const frames = [];
    const perChoice = plans.map((p) => S.chatDeltas(p, body));
    const steps = Math.max(...perChoice.map((d) => d.length));
    for (let i = 0; i < steps; i++) {
      const choices = perChoice.flatMap((d, index) => (i < d.length ? [{ index, ...d[i] }] : []));
      frames.push({ data: S.chatChunk(meta, choices, { includeUsage }), token: i > 0 });
    }
    for (const [index, p] of plans.entries()) {
      frames.push({ data: S.chatChunk(meta, [{ index, delta: {}, finish_reason: p.finish }], { includeUsage }) });
    }
    if (includeUsage) frames.push({ data: S.chatChunk(meta, [], { includeUsage, usage: S.sumUsage(plans) }) });
    frames.push({ raw: 'data: [DONE]\n\n' });
    const failure = () => ({ data: S.errorEnvelope({ message: 'The server had an error while processing your request.', type: 'server_error' }) });
    return this.stream(ctx, behaviour, frames, failure);
  }

  respond(ctx, behaviour) {
    const { res, rec } = ctx;
    const body = rec.body;
    const meta = { id: S.randomId('resp_fake'), itemId: S.randomId('msg_fake'), created: S.nowSeconds(),
                   model: behaviour.response_model ?? body.model };
    const plan = S.planGeneration(body, behaviour, { maxTokens: body.max_output_tokens ?? null });
    if (plan.tool) meta.itemId = S.randomId('fc_fake');
    const events = S.responseEvents(meta, body, plan, { thin: Boolean(behaviour.thin_completed) });
    const last = events[events.length - 1];
    const store = () => {
      if (body.store !== false) this.responses.set(meta.id, { body, output: S.outputItem(meta, plan) });
    };
    if (!body.stream) {
      return this.whole(ctx, behaviour, () => { store(); return last.response; });
    }
    let seq = 0;
    const frames = events.map((e) => ({ event: e.type, data: { ...e, sequence_number: seq++ }, token: e.type.endsWith('.delta') }));
    frames[frames.length - 1].onSent = store;
    const failure = (next) => ({ event: 'response.failed',
                                 data: { ...S.responseFailed(meta, body, 'The server had an error while processing your request.'), sequence_number: next } });
    return this.stream(ctx, behaviour, frames, failure);
  }

  // A non-streamed answer after the first-token delay (and the scripted faults that apply).
  whole(ctx, behaviour, makeBody) {
    const { res } = ctx;
    ctx.later(behaviour.first_token_ms ?? 0, () => {
      if (behaviour.stall === 'after_head') { res.writeHead(200, { 'content-type': 'application/json' }); res.flushHeaders(); return; }
      if (behaviour.malformed === 'json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"id": "chatcmpl-broken", "choices": [');
      }
      if (behaviour.drop_after !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"id": ');
        return ctx.later(5, () => res.socket?.destroy());
      }
      sendJson(res, 200, makeBody(), behaviour.headers);
    });
  }

  // Streams SSE frames ({event?, data, token?} or {raw}): headers and the frames before the
  // first token at once, the first token after first_token_ms, each further token interval_ms
  // later, the closing frames right after the last token. Faults are checked before each frame
  // that is not part of the preamble, counting the tokens already sent.
  stream(ctx, behaviour, frames, failure) {
    const { res } = ctx;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache',
                         connection: 'keep-alive', ...(behaviour.headers ?? {}) });
    res.flushHeaders();
    if (behaviour.stall === 'after_head') return;
    const firstToken = frames.findIndex((f) => f.token);
    const interval = behaviour.interval_ms ?? 0;
    let i = 0;
    let tokens = 0;
    let oversized = false;
    const send = (f) => {
      res.write(f.raw ?? `${f.event ? `event: ${f.event}\n` : ''}data: ${JSON.stringify(f.data)}\n\n`);
      f.onSent?.();
    };
    const fault = () => {
      if (behaviour.drop_after !== undefined && tokens >= behaviour.drop_after) {
        res.socket?.destroy();
        return true;
      }
      if (behaviour.error_after !== undefined && tokens >= behaviour.error_after) {
        send(failure(i));
        res.end();
        return true;
      }
      if (behaviour.malformed === 'line' && !oversized && frames[i]?.token && tokens >= (behaviour.malformed_after ?? 0)) {
        // Valid JSON, one enormous line: the token's text becomes line_bytes of "x".
        oversized = true;
        const data = structuredClone(frames[i].data);
        const big = 'x'.repeat(behaviour.line_bytes ?? 2 * 1024 * 1024);
        if (data.choices) data.choices[0].delta.content = big; else data.delta = big;
        frames[i] = { ...frames[i], data };
        return false;
      }
      if (behaviour.malformed === 'sse' && tokens >= (behaviour.malformed_after ?? 0)) {
        res.write('data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": \n\n');
        ctx.later(20, () => res.end());
        return true;
      }
      return false;
    };
    const step = () => {
      if (ctx.stopped) return;
      if (fault()) return;
      if (i >= frames.length) return res.end();
      const isToken = frames[i].token;
      send(frames[i]);
      i += 1;
      if (isToken) tokens += 1;
      if (behaviour.stall === 'after_first' && tokens >= 1) return;
      if (i < frames.length && frames[i].token) ctx.later(interval, step);
      else step();
    };
    while (i < frames.length && (firstToken < 0 ? i < 1 : i < firstToken)) send(frames[i++]);
    ctx.later(behaviour.first_token_ms ?? 0, step);
  }
}

function modelObject(id) { return { id, object: 'model', created: 1700000000, owned_by: 'fake' }; }

function sendJson(res, status, obj, headers = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

// The checks the real API makes first: required fields and their types, and stored responses.
function validate(path, body, stored) {
  const bad = (message, param, code = null) => ({ status: 400, error: { message, type: 'invalid_request_error', param, code } });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('The request body must be a JSON object.', null);
  if (typeof body.model !== 'string') return bad("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
  if (path === '/v1/chat/completions') {
    if (!Array.isArray(body.messages)) return bad("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
    if (body.messages.length === 0) return bad("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'messages', 'empty_array');
  } else if (path === '/v1/responses') {
    if (body.previous_response_id !== undefined && body.previous_response_id !== null && !stored.has(body.previous_response_id)) {
      return bad(`Previous response with id '${body.previous_response_id}' not found.`, 'previous_response_id', 'previous_response_not_found');
    }
  } else if (path === '/v1/embeddings') {
    if (body.input === undefined) return bad("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  }
  return null;
}
