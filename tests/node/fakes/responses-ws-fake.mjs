// A fake Responses-over-WebSocket upstream (Node `ws`/`http`/`https`, nothing of ringcast's):
// GET /v1/responses upgraded to WebSocket; each `{"type":"response.create", …}` text frame
// (the Responses create body's fields at the top level) is answered with the Responses
// streaming events as JSON text frames, one response at a time per socket (later creates wait
// their turn, in order).
//
// State per socket, like the real WebSocket mode with store=false: a response finished on a
// socket can be continued on that socket only (`previous_response_id`); an id the socket does
// not know is answered with an error event {"type":"error","status":400,"error":{type, code:
// "previous_response_not_found", message, param:"previous_response_id"}}. The reply text starts
// with `turn<N>:` where N is the response's depth in its chain (1 without a previous response),
// so a client can see that the socket kept the conversation.
//
// Behaviour per response.create (defaults < byModel[model] < next `script(...)` entry): the
// text keys of openai-fake.mjs (text, tokens, first_token_ms, interval_ms, tool_call,
// thin_completed), plus: error {status, type, code, message, param} → an error event instead
// of a response; drop_after (tokens, then the socket is terminated without a close frame);
// error_after (tokens, then response.failed); malformed 'frame' (a text frame that is not JSON)
// or 'binary' (a binary frame), after malformed_after tokens; stall 'before_first' |
// 'after_first'; close_after (the socket is closed with 1000 after the response).
//
// Recording: `sockets` (one entry per accepted socket: {id, headers, openedAt, closedAt,
// closeCode, creates}); `creates` (every response.create in arrival order: {socket, body,
// behaviour, receivedAt, firstEventAt, finishedAt, abortedAt, responseId, turn, error}).
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import * as S from './shapes.mjs';

export async function startResponsesWsFake({ tls = null, apiKey = null, defaults = {} } = {}) {
  const fake = new ResponsesWsFake({ apiKey, defaults });
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }) : http.createServer();
  server.on('request', (req, res) => {
    const body = JSON.stringify(S.errorEnvelope({ message: 'This endpoint expects a WebSocket upgrade.' }));
    res.writeHead(426, { 'content-type': 'application/json', upgrade: 'websocket' });
    res.end(body);
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const path = req.url.split('?')[0];
    const reject = (status, envelope) => {
      const text = JSON.stringify(envelope);
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
                 `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
    };
    fake.upgrades.push({ path, headers: req.headers, at: performance.now() });
    if (path !== '/v1/responses') return reject(404, S.errorEnvelope({ message: `Invalid URL (GET ${path})` }));
    if (apiKey !== null && req.headers.authorization !== `Bearer ${apiKey}`) {
      return reject(401, S.errorEnvelope(S.defaultError(401)));
    }
    if (fake.refuseUpgrades) return reject(503, S.errorEnvelope(S.defaultError(503)));
    wss.handleUpgrade(req, socket, head, (ws) => fake.accept(ws, req));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.server = server;
  fake.wss = wss;
  fake.port = server.address().port;
  const scheme = tls ? 'wss' : 'ws';
  fake.url = `${scheme}://${tls ? 'localhost' : '127.0.0.1'}:${fake.port}/v1/responses`;
  fake.baseURL = `${scheme}://${tls ? 'localhost' : '127.0.0.1'}:${fake.port}/v1`;
  return fake;
}

class ResponsesWsFake {
  constructor({ apiKey, defaults }) {
    this.apiKey = apiKey;
    this.defaults = defaults;
    this.byModel = {};
    this.queue = [];
    this.sockets = [];
    this.creates = [];
    this.upgrades = [];
    this.refuseUpgrades = false;
  }

  script(...behaviours) { this.queue.push(...behaviours); }
  openSockets() { return this.sockets.filter((s) => s.closedAt === null).length; }
  busySockets() { return this.sockets.filter((s) => s.closedAt === null && s.busy).length; }
  // Terminates every socket without a close frame (an upstream killed).
  killAll() { for (const s of this.sockets) s.ws.terminate(); }
  async waitFor(predicate, timeoutMs = 10000, what = 'a condition on the WS fake') {
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

  accept(ws, req) {
    const sock = { id: this.sockets.length + 1, ws, headers: req.headers, openedAt: performance.now(),
                   closedAt: null, closeCode: null, creates: [], known: new Map(), pending: [], busy: false,
                   current: null };
    this.sockets.push(sock);
    ws.on('message', (data, isBinary) => this.onMessage(sock, data, isBinary));
    ws.on('close', (code) => {
      sock.closedAt = performance.now();
      sock.closeCode = code;
      if (sock.current && sock.current.finishedAt === null) {
        sock.current.abortedAt = sock.closedAt;
        sock.current.cancel();
      }
    });
    ws.on('error', () => {});
  }

  onMessage(sock, data, isBinary) {
    const sendError = (status, error) => sock.ws.send(JSON.stringify({ type: 'error', status, error: { param: null, code: null, ...error } }));
    let msg;
    try {
      msg = JSON.parse(isBinary ? '' : data.toString());
    } catch {
      return sendError(400, { type: 'invalid_request_error', message: 'Invalid JSON in client event.' });
    }
    if (msg?.type !== 'response.create') {
      return sendError(400, { type: 'invalid_request_error', code: 'unknown_event_type',
                              message: `Unknown event type: ${JSON.stringify(msg?.type ?? null)}.`, param: 'type' });
    }
    let behaviour = { ...this.defaults, ...(this.byModel[msg.model] ?? {}) };
    const next = this.queue.shift();
    if (next) behaviour = { ...behaviour, ...next };
    const rec = { socket: sock.id, body: msg, behaviour, receivedAt: performance.now(), firstEventAt: null,
                  finishedAt: null, abortedAt: null, responseId: null, turn: null, error: null, cancel: () => {} };
    this.creates.push(rec);
    sock.creates.push(rec);
    sock.pending.push(rec);
    if (!sock.busy) this.runNext(sock);
  }

  runNext(sock) {
    const rec = sock.pending.shift();
    if (!rec) { sock.busy = false; sock.current = null; return; }
    sock.busy = true;
    sock.current = rec;
    const body = rec.body;
    const b = rec.behaviour;
    const finish = () => {
      rec.finishedAt = performance.now();
      if (b.close_after) sock.ws.close(1000, 'done');
      this.runNext(sock);
    };
    const sendError = (status, error) => {
      rec.error = error;
      this.sendEvent(sock, rec, { type: 'error', status, error: { type: 'invalid_request_error', code: null, param: null, ...error } });
      finish();
    };
    if (typeof body.model !== 'string') {
      return sendError(400, { message: "Missing required parameter: 'model'.", code: 'missing_required_parameter', param: 'model' });
    }
    let turn = 1;
    if (body.previous_response_id != null) {
      const prev = sock.known.get(body.previous_response_id);
      if (!prev) {
        return sendError(400, { message: `Previous response with id '${body.previous_response_id}' not found.`,
                                code: 'previous_response_not_found', param: 'previous_response_id' });
      }
      turn = prev.turn + 1;
    }
    if (b.error) {
      const { status = 500, ...error } = b.error;
      return sendError(status, { ...S.defaultError(status), ...error });
    }
    rec.turn = turn;
    const meta = { id: S.randomId(`resp_ws${sock.id}_`, 8), itemId: S.randomId('msg_ws', 8), created: S.nowSeconds(),
                   model: b.response_model ?? body.model };
    rec.responseId = meta.id;
    const plan = S.planGeneration(body, b, { maxTokens: body.max_output_tokens ?? null, prefix: `turn${turn}:` });
    if (plan.tool) meta.itemId = S.randomId('fc_ws', 8);
    const events = S.responseEvents(meta, body, plan, { thin: Boolean(b.thin_completed) });
    this.play(sock, rec, events, b, () => {
      sock.known.set(meta.id, { turn });
      finish();
    }, meta, body);
  }

  sendEvent(sock, rec, event) {
    if (rec.firstEventAt === null) rec.firstEventAt = performance.now();
    sock.ws.send(JSON.stringify(event));
  }

  // Sends the events with the scripted timing and faults (see the header); `done` after the last.
  play(sock, rec, events, b, done, meta, body) {
    const timers = new Set();
    let stopped = false;
    rec.cancel = () => { stopped = true; for (const t of timers) clearTimeout(t); };
    const later = (ms, fn) => { const t = setTimeout(() => { timers.delete(t); fn(); }, ms); timers.add(t); };
    let seq = 0;
    let i = 0;
    let tokens = 0;
    const send = (e) => this.sendEvent(sock, rec, { ...e, sequence_number: seq++ });
    const isToken = (e) => e.type.endsWith('.delta');
    const fault = () => {
      if (b.drop_after !== undefined && tokens >= b.drop_after) { rec.cancel(); sock.ws.terminate(); return true; }
      if (b.error_after !== undefined && tokens >= b.error_after) {
        send(S.responseFailed(meta, body, 'The server had an error while processing your request.'));
        rec.finishedAt = performance.now();
        this.runNext(sock);
        return true;
      }
      if (b.malformed && tokens >= (b.malformed_after ?? 0)) {
        if (b.malformed === 'binary') sock.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]), { binary: true });
        else sock.ws.send('{"type": "response.output_text.delta", "delta": ');
        rec.cancel();
        return true;
      }
      return false;
    };
    const step = () => {
      if (stopped || sock.closedAt !== null) return;
      if (fault()) return;
      if (i >= events.length) return done();
      const token = isToken(events[i]);
      send(events[i]);
      i += 1;
      if (token) tokens += 1;
      if (b.stall === 'after_first' && tokens >= 1) return;
      if (i < events.length && isToken(events[i])) later(b.interval_ms ?? 0, step);
      else step();
    };
    if (b.stall === 'before_first') return;
    while (i < events.length && !isToken(events[i]) && events[i].type !== 'response.output_item.done') send(events[i++]);
    later(b.first_token_ms ?? 0, step);
  }
}
