// Parity: every engine that is ringcast's mock — the mock itself, an `openai` upstream that is a
// second ringcast on mock, and a `jsonrpc` upstream running the reference worker
// (tests/workers/mock_worker.py) — must give clients the same transcripts on every front
// (parity/fronts.mjs) for every scenario (parity/scenarios.mjs), ids and clocks normalized
// (parity/normalize.mjs). The expected transcripts are the golden files
// tests/golden/parity/<scenario>.<front>.json. parity.test.mjs checks each engine (one CTest
// test each); this file is also the command that checks or regenerates them:
//
//   node tests/node/parity.mjs                   check every engine against the goldens
//   node tests/node/parity.mjs --engines openai  check some engines
//   node tests/node/parity.mjs --update          rewrite the goldens from mock, after checking
//                                                that every other engine gives the same
//                                                transcripts (nothing is written otherwise)
//
// RINGCAST_BIN defaults to build/release/server/ringcast.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EMBEDDING_FRONTS, FRONTS, openFront } from './parity/fronts.mjs';
import { canonical, firstDifference, normalizer, unifiedDiff } from './parity/normalize.mjs';
import { MODEL, SCENARIOS } from './parity/scenarios.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const GOLDEN_DIR = path.join(ROOT, 'tests/golden/parity');

const MOCK_WORKER = path.join(ROOT, 'tests/workers/mock_worker.py');

// The mock's settings, the same wherever the mock runs (the reference worker takes them too).
const MOCK_FLAGS = ['--mock-tokens', '8'];

// Imported on first use, so that the command line can default RINGCAST_BIN first.
const fakes = () => import('./fakes/ringcast.mjs');

// Each engine: start() → { base (http://host:port), stop() }.
export const ENGINES = {
  mock: {
    what: 'ringcast on its mock engine',
    async start() {
      const srv = await (await fakes()).startMockUpstream(MOCK_FLAGS);
      return { base: srv.url(''), stop: () => srv.stop() };
    },
  },
  openai: {
    // Chat and Responses are passed through (api = "both"): the relay's HTTP fronts send the
    // inner ringcast's own chunks and objects; its WebSocket fronts render typed events.
    what: 'ringcast → kind "openai" upstream → a second ringcast on mock',
    async start() {
      const { startMockUpstream, startRingcast } = await fakes();
      const inner = await startMockUpstream(MOCK_FLAGS);
      try {
        const relay = await startRingcast({ config: {
          upstreams: [{ name: 'inner', kind: 'openai', endpoints: [inner.baseURL], api: 'both' }],
          models: [{ name: MODEL, upstream: 'inner', upstream_model: MODEL }] } });
        return { base: relay.url(''), async stop() { try { await relay.stop(); } finally { await inner.stop(); } } };
      } catch (e) {
        await inner.stop();
        throw e;
      }
    },
  },
  jsonrpc: jsonrpcEngine({ shards: 1 }),
  // Two shards, one worker (owned by shard 0): the requests that arrive on shard 1 run on the
  // worker through generate_on_shard / embed_on_shard.
  jsonrpc_cross_shard: jsonrpcEngine({ shards: 2 }),
};

// ringcast with a jsonrpc upstream of one reference worker; it renders every front from the
// worker's typed events (nothing is passed through).
function jsonrpcEngine({ shards }) {
  return {
    // The one legitimate difference: a worker's refusal is a JSON-RPC error, which always has a
    // code (-32602 is `invalid_request` unless its data names another, docs/workers.md), where
    // the mock's own refusal has "code": null (and the /ws actions, which need one, show the
    // type). So in the exchanges a scenario marks "refused_by": "engine", and only there, the
    // error's code is not compared; its status, type, param and message are.
    differs: (t) => forRefusals(t, (error) => { if ('code' in error) error.code = '<the engine\'s code>'; }),
    what: `ringcast (${shards} shard${shards > 1 ? 's' : ''}) → kind "jsonrpc" upstream → tests/workers/mock_worker.py`,
    unavailable: () => (fs.existsSync(MOCK_WORKER) ? null : `${path.relative(ROOT, MOCK_WORKER)} is not in this tree`),
    async start() {
      const srv = await (await fakes()).startRingcast({ shards, config: {
        upstreams: [{ name: 'workers', kind: 'jsonrpc', protocol: 'ringcast', command: ['python3', MOCK_WORKER, ...MOCK_FLAGS],
                      workers: 1 }],
        models: [{ name: MODEL, upstream: 'workers', upstream_model: MODEL }] } });
      try {
        await readyz(srv.url('/readyz'));
      } catch (e) {
        await srv.stop();
        throw e;
      }
      return { base: srv.url(''), stop: () => srv.stop() };
    },
  };
}

// A copy of transcript `t` with fix(error) applied to the error objects of its exchanges
// refused by the engine.
function forRefusals(t, fix) {
  const out = structuredClone(t);
  for (const x of out.exchanges) {
    if (x.refused_by !== 'engine') continue;
    if (x.body?.error) fix(x.body.error);
    for (const e of x.events ?? []) if (e.error) fix(e.error);
  }
  return out;
}

// Until /readyz is 200 (a jsonrpc upstream is not ready before its worker is).
async function readyz(url, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(url);
    if (r.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url}: ${r.status} ${await r.text()} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The golden files' names: <scenario>.<front>.json.
export function cases() {
  const out = [];
  for (const s of SCENARIOS) for (const f of [...FRONTS, ...EMBEDDING_FRONTS]) if (s.fronts.includes(f)) out.push({ scenario: s, front: f, file: `${s.name}.${f}.json` });
  return out;
}

// Runs every scenario on every front of a running engine: Map file → normalized transcript.
export async function transcripts(base) {
  const out = new Map();
  for (const { scenario, front, file } of cases()) {
    const client = await openFront(front, base);
    let exchanges;
    try {
      exchanges = await scenario.run(client, front);
    } catch (e) {
      throw new Error(`${scenario.name} on ${front}: ${e.message}`, { cause: e });
    } finally {
      client.close();
    }
    const norm = normalizer();
    out.set(file, { scenario: scenario.name, front, exchanges: exchanges.map((x) => readable(norm(x))) });
  }
  return out;
}

// An exchange's own members in reading order (the normalizer sorted them with the rest).
const EXCHANGE_ORDER = ['request', 'refused_by', 'status', 'content_type', 'body', 'body_text', 'events'];
function readable(exchange) {
  const out = {};
  for (const k of EXCHANGE_ORDER) if (k in exchange) out[k] = exchange[k];
  for (const k of Object.keys(exchange)) if (!(k in out)) out[k] = exchange[k];
  return out;
}

export async function runEngine(name) {
  const engine = ENGINES[name];
  if (!engine) throw new Error(`unknown engine ${name} (${Object.keys(ENGINES).join(', ')})`);
  const srv = await engine.start();
  try {
    return await transcripts(srv.base);
  } finally {
    await srv.stop();
  }
}

// The differences between expected and actual transcripts, each readable on its own: the
// engine, scenario, front, the path of the first difference and a unified diff; [] if none.
export function compare(want, got, { engine, against = 'golden' }) {
  const problems = [];
  const differs = ENGINES[engine]?.differs ?? ((t) => t);
  for (const [file, wantRaw] of want) {
    const w = differs(wantRaw);
    const g = got.has(file) ? differs(got.get(file)) : undefined;
    if (!g) { problems.push(`${engine}: ${file}: no transcript`); continue; }
    const a = canonical(w);
    const b = canonical(g);
    if (a === b) continue;
    problems.push([
      `${engine}: scenario ${w.scenario}, front ${w.front}: first difference at ${firstDifference(w, g)}`,
      unifiedDiff(a, b, { from: `${against} ${file}`, to: `${engine} ${file}` }),
    ].join('\n'));
  }
  for (const file of got.keys()) if (!want.has(file)) problems.push(`${engine}: ${file}: no ${against} transcript (run node tests/node/parity.mjs --update)`);
  return problems;
}

export function readGoldens() {
  const out = new Map();
  for (const { file } of cases()) {
    const p = path.join(GOLDEN_DIR, file);
    if (fs.existsSync(p)) out.set(file, JSON.parse(fs.readFileSync(p, 'utf8')));
  }
  return out;
}

// Golden files no case writes any more (a renamed scenario or front).
export function staleGoldens() {
  const known = new Set(cases().map((c) => c.file));
  if (!fs.existsSync(GOLDEN_DIR)) return [];
  return fs.readdirSync(GOLDEN_DIR).filter((f) => !known.has(f));
}

async function main(argv) {
  process.env.RINGCAST_BIN ??= path.join(ROOT, 'build/release/server/ringcast');
  const update = argv.includes('--update');
  const i = argv.indexOf('--engines');
  const engines = i >= 0 ? argv[i + 1].split(',') : Object.keys(ENGINES);
  if (update && i >= 0) throw new Error('--update runs every engine: goldens must agree with all of them');
  const results = new Map();
  for (const e of [...engines]) {
    const why = ENGINES[e]?.unavailable?.();
    if (why) {
      process.stderr.write(`parity: engine ${e} skipped: ${why}\n`);
      engines.splice(engines.indexOf(e), 1);
    }
  }
  for (const e of engines) {
    process.stderr.write(`parity: ${e} (${ENGINES[e]?.what ?? '?'})…\n`);
    results.set(e, await runEngine(e));
  }
  if (update) {
    const reference = results.get('mock');
    const problems = engines.filter((e) => e !== 'mock').flatMap((e) => compare(reference, results.get(e), { engine: e, against: 'mock' }));
    if (problems.length > 0) {
      process.stderr.write(`${problems.join('\n')}\nparity: the engines disagree; no golden file written\n`);
      return 1;
    }
    fs.mkdirSync(GOLDEN_DIR, { recursive: true });
    for (const f of staleGoldens()) fs.rmSync(path.join(GOLDEN_DIR, f));
    for (const [file, t] of reference) fs.writeFileSync(path.join(GOLDEN_DIR, file), canonical(t));
    process.stderr.write(`parity: ${reference.size} golden files written to ${path.relative(ROOT, GOLDEN_DIR)} (engines ${engines.join(', ')} agree)\n`);
    return 0;
  }
  const goldens = readGoldens();
  const problems = [...results].flatMap(([e, got]) => compare(goldens, got, { engine: e }));
  problems.push(...staleGoldens().map((f) => `stale golden file ${f}`));
  process.stderr.write(problems.length > 0 ? `${problems.join('\n')}\n` : `parity: ${engines.join(', ')} match ${goldens.size} golden files\n`);
  return problems.length > 0 ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; },
                                    (e) => { process.stderr.write(`parity: ${e.stack ?? e}\n`); process.exitCode = 2; });
}
