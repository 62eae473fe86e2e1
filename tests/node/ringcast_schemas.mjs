// Every JSON Schema under docs/schemas (README.md there), compiled into one ajv 2020-12 instance
// in strict mode (cross-area $refs resolve), and the checker that picks the schema of a message
// ringcast sends: a /ws event by its `event` (docs/schemas/ws/index.json), a topic or broker SSE
// event by its route and the `sse` map of the area's index.json (nothing else routes). An SSE
// event is checked as the object {event, id (only when the event had an `id:` line), data (the
// parsed data)}, or, in a `data_only` area (ops), its data by the schema and its id by the
// index's `ids`.
//
//   node tests/node/ringcast_schemas.mjs WIRE.jsonl...
//
// validates logs written by the Python suites under RINGCAST_WIRE_LOG (one JSON object a line:
// {"kind": "ws"|"sse", "route": "/ws", "message": …}); prints each failing line and a count per
// schema, exits 1 when a message fails or has no schema.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

export const SCHEMAS_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/schemas');

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));

export const schemaErrors = (validate) =>
  (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');

// { 'area/name': { area, name, schema, validate, valid: [...], invalid: [{why, message}] } } for
// every docs/schemas/<area>/<name>.schema.json. Valid examples: the schema's `examples` keyword
// and <name>.valid.json. Throws when a schema does not compile in strict mode.
export function loadAllSchemas(root = SCHEMAS_ROOT) {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  const out = {};
  for (const area of fs.readdirSync(root).sort()) {
    const dir = path.join(root, area);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const file of fs.readdirSync(dir).sort()) {
      if (!file.endsWith('.schema.json')) continue;
      const name = file.slice(0, -'.schema.json'.length);
      const schema = readJson(path.join(dir, file));
      ajv.addSchema(schema);
      const side = (suffix) => {
        const f = path.join(dir, `${name}.${suffix}.json`);
        return fs.existsSync(f) ? readJson(f) : null;
      };
      const validFile = side('valid');
      out[`${area}/${name}`] = {
        area, name, schema,
        valid: [...(schema.examples ?? []), ...(validFile ?? [])],
        validFile, invalid: side('invalid'),
      };
    }
  }
  for (const s of Object.values(out)) s.validate = ajv.getSchema(s.schema.$id);
  return out;
}

export function loadAreaIndex(area, root = SCHEMAS_ROOT) {
  const f = path.join(root, area, 'index.json');
  return fs.existsSync(f) ? readJson(f) : null;
}

const SSE_ROUTES = [
  [/^\/v1\/topics\/[^/]+\/events$/, 'topics'],
  [/^\/api\/v1\/stream$/, 'broker'],
  [/^\/dashboard\/ops$/, 'ops'],
];

// Picks and applies the schema of what ringcast sends. Each check returns the schema's key
// ('ws/message.event') or throws saying why (no schema, or the schema's errors).
export class WireChecker {
  constructor(schemas = loadAllSchemas()) {
    this.schemas = schemas;
    this.ws = loadAreaIndex('ws');
    this.indexes = {};  // area -> its index.json (null when it has none)
    this.seen = new Map();  // schema key -> count
  }

  apply(key, message) {
    const s = this.schemas[key];
    if (!s) throw new Error(`no schema ${key}`);
    if (!s.validate(message)) throw new Error(`${key}: ${schemaErrors(s.validate)} in ${JSON.stringify(message).slice(0, 300)}`);
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
    return key;
  }

  // A message ringcast sent on /ws (already parsed).
  wsEvent(m) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error(`/ws: not a JSON object: ${JSON.stringify(m)}`);
    if ('event_id' in m) return this.apply(`ws/${this.ws.with_event_id}`, m);
    if (typeof m.event !== 'string') throw new Error(`/ws: no event name in ${JSON.stringify(m).slice(0, 300)}`);
    let name = this.ws.events[m.event];
    for (const [prefix, n] of Object.entries(this.ws.prefixes)) if (!name && m.event.startsWith(prefix)) name = n;
    if (!name) throw new Error(`/ws: no schema for event '${m.event}'`);
    return this.apply(`ws/${name}`, m);
  }

  // A message a client sends on /ws (for examples and docs).
  wsRequest(m) {
    const name = this.ws.requests[m?.action];
    if (!name) throw new Error(`/ws: no schema for action '${m?.action}'`);
    return this.apply(`ws/${name}`, m);
  }

  // An SSE event {event, id?, data} of `route` (a path, with or without its query).
  sseEvent(route, e) {
    const p = route.split('?')[0];
    const area = SSE_ROUTES.find(([re]) => re.test(p))?.[1];
    if (!area) throw new Error(`no schemas for the SSE route ${p}`);
    if (!(area in this.indexes)) this.indexes[area] = loadAreaIndex(area);
    const index = this.indexes[area];
    // Only the area's index routes: an HTTP body's schema (broker/accepted, topics/published)
    // never checks an SSE event, even when it has the event's name.
    const name = Object.hasOwn(index?.sse ?? {}, e.event) ? index.sse[e.event] : null;
    if (!name) throw new Error(`${p}: no schema for SSE event '${e.event}'`);
    const key = `${area}/${name}`;
    if (!index.data_only) return this.apply(key, e);
    // A data-only area (ops): the schema describes the data; the index says the `id:` line.
    const idRule = index.ids?.[e.event];
    if (idRule === null && e.id !== undefined) throw new Error(`${key}: '${e.event}' events have no id: line, got ${JSON.stringify(e.id)}`);
    if (typeof idRule === 'string' && !(typeof e.id === 'string' && new RegExp(idRule).test(e.id)))
      throw new Error(`${key}: the id: line must match ${idRule}, got ${JSON.stringify(e.id)}`);
    return this.apply(key, e.data);
  }

  // One entry of a wire log.
  entry({ kind, route, message }) {
    if (kind === 'ws') {
      if (route.split('?')[0] !== '/ws') throw new Error(`no schemas for the WebSocket route ${route}`);
      return this.wsEvent(message);
    }
    if (kind === 'sse') return this.sseEvent(route, message);
    throw new Error(`unknown kind ${JSON.stringify(kind)}`);
  }
}

// An SSE event as the schemas see it. `id`: the event's `id:` line, undefined when it had none.
export function sseObject(type, data, id) {
  const o = { event: type };
  if (id !== undefined && id !== null) o.id = id;
  o.data = JSON.parse(data);
  return o;
}

// Parses an SSE body (text) into schema objects; comments (`: ping`) are skipped.
export function parseSse(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event = 'message', id, data = null;
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'id') id = value;
      else if (field === 'data') data = data === null ? value : `${data}\n${value}`;
    }
    if (data !== null) out.push(sseObject(event, data, id));
  }
  return out;
}

// For the suites' clients: validates each message as it arrives and remembers what fails, so
// the test asserts at its end (`wire.assertValid()`) rather than throwing inside a socket's handler.
//   ws(message)        a parsed /ws message ringcast sent
//   sseFetch           a fetch for EventSource ({ fetch: wire.sseFetch }): validates every event of
//                      an SSE response from its raw fields (its own `id:` line, not the lastEventId
//                      EventSource carries forward; every type, listened to or not) before the
//                      EventSource sees it. `fetch` (option): the fetch it wraps.
let sharedChecker = null;
export function wireRecorder({ fetch: baseFetch = (...a) => globalThis.fetch(...a) } = {}) {
  sharedChecker ??= new WireChecker();
  const failures = [];
  let count = 0;
  const run = (f) => {
    count++;
    try { f(); } catch (e) { failures.push(e.message); }
  };
  const sseFetch = async (url, init) => {
    const res = await baseFetch(url, init);
    if (!res.body || !/^text\/event-stream/.test(res.headers.get('content-type') ?? '')) return res;
    const route = new URL(String(url)).pathname;
    const decoder = new TextDecoder();
    let pending = '';
    const check = (text) => {
      for (const block of text.split(/\r?\n\r?\n/)) {
        if (block.split(/\r?\n/).some((l) => l.startsWith('data'))) run(() => parseSse(block).forEach((e) => sharedChecker.sseEvent(route, e)));
      }
    };
    const body = res.body.pipeThrough(new TransformStream({
      transform(chunk, controller) {
        pending += decoder.decode(chunk, { stream: true });
        const end = Math.max(pending.lastIndexOf('\n\n'), pending.lastIndexOf('\r\n\r\n'));
        if (end >= 0) {
          check(pending.slice(0, end));
          pending = pending.slice(end).replace(/^(\r?\n)+/, '');
        }
        controller.enqueue(chunk);
      },
    }));
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return {
    ws(m) { run(() => sharedChecker.wsEvent(m)); return m; },
    sseFetch,
    get count() { return count; },
    failures,
    assertValid() {
      if (failures.length) throw new Error(`${failures.length} of ${count} messages fail their schema:\n${failures.slice(0, 10).join('\n')}`);
    },
  };
}

export function checkWireLog(text, checker = new WireChecker()) {
  const failures = [];
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim()) return;
    try {
      checker.entry(JSON.parse(raw));
    } catch (e) {
      failures.push({ line: i + 1, reason: e.message });
    }
  });
  return { failures, seen: Object.fromEntries([...checker.seen].sort()) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2);
  if (!files.length) {
    console.error('usage: node ringcast_schemas.mjs WIRE.jsonl...');
    process.exit(2);
  }
  const checker = new WireChecker();  // one checker: `seen` counts over every file
  let failed = 0;
  for (const file of files) {
    const { failures } = checkWireLog(fs.readFileSync(file, 'utf8'), checker);
    for (const f of failures) console.log(`${file}:${f.line}: ${f.reason}`);
    failed += failures.length;
  }
  const seen = Object.fromEntries([...checker.seen].sort());
  for (const [name, n] of Object.entries(seen)) console.log(`${name}: ${n}`);
  const total = Object.values(seen).reduce((a, b) => a + b, 0);
  console.log(failed ? `${failed} message(s) fail` : `all ${total} messages validate`);
  process.exit(failed ? 1 : 0);
}
