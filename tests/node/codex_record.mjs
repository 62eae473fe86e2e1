// Records real `codex app-server` transcripts (the pinned @openai/codex) for the unit tests of
// ringcast's codex-app-server dialect (tests/unit/server/worker_dialect_codex_test.cc).
//
//   RINGCAST_BIN=build/release/server/ringcast node tests/node/codex_record.mjs [out-dir]
//
// Starts ringcast on mock as Codex's model provider (a fast one, and a slow one for the
// interrupt), drives `codex app-server` over stdio by hand and writes one JSONL file per
// scenario to tests/unit/server/fixtures/codex/: each line {"dir":">"|"<","msg":{…}} (">": to
// codex, "<": from codex), in the order they were sent and received. Volatile noise codex sends
// to every client (config warnings, remote-control and rate-limit updates) is kept: the dialect
// must ignore it. Not run by CTest (it records; the unit tests replay).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startServer } from './harness.mjs';
import { CODEX_JS, codexHome } from './codex.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.argv[2] ?? path.join(here, '..', 'unit', 'server', 'fixtures', 'codex');
const MODEL = 'ringcast-mock';

class AppServer {
  constructor(home) {
    this.lines = [];
    this.waiters = [];
    this.nextId = 1;
    this.proc = spawn(process.execPath, [CODEX_JS, 'app-server'], {
      cwd: home, stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, CODEX_HOME: home, RINGCAST_CODEX_KEY: 'sk-ringcast-test', NO_COLOR: '1' },
    });
    this.stderr = '';
    this.proc.stderr.on('data', (c) => { this.stderr += c; });
    readline.createInterface({ input: this.proc.stdout }).on('line', (l) => {
      const msg = JSON.parse(l);
      this.lines.push({ dir: '<', msg });
      for (const w of [...this.waiters]) {
        if (w.pred(msg)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(msg); }
      }
      if (this.onMessage) this.onMessage(msg);
    });
  }
  send(msg) { this.lines.push({ dir: '>', msg }); this.proc.stdin.write(JSON.stringify(msg) + '\n'); }
  request(method, params) { const id = this.nextId++; this.send({ id, method, params }); return this.wait((m) => m.id === id && !m.method); }
  wait(pred, ms = 60000) {
    const seen = this.lines.find((l) => l.dir === '<' && pred(l.msg) && !l.claimed);
    if (seen) { seen.claimed = true; return Promise.resolve(seen.msg); }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting; stderr:\n' + this.stderr)), ms);
      this.waiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m); } });
    });
  }
  async initialize() {
    // What ringcast's dialect sends (worker_dialect_codex.cc), noisy notifications opted out.
    await this.request('initialize', {
      clientInfo: { name: 'ringcast', title: null, version: '1' },
      capabilities: { experimentalApi: false, requestAttestation: false,
                      optOutNotificationMethods: ['thread/started', 'thread/status/changed',
                        'account/rateLimits/updated', 'remoteControl/status/changed', 'item/started'] } });
    this.send({ method: 'initialized', params: {} });
  }
  async stop() { this.proc.stdin.end(); this.proc.kill('SIGTERM'); await new Promise((r) => setTimeout(r, 200)); }
  save(name) {
    const text = this.lines.map((l) => JSON.stringify({ dir: l.dir, msg: l.msg })).join('\n') + '\n';
    fs.writeFileSync(path.join(outDir, `${name}.jsonl`), text);
    console.log(`${name}: ${this.lines.length} messages`);
  }
}

const turnDone = (m) => m.method === 'turn/completed';
const text = (t) => [{ type: 'text', text: t, text_elements: [] }];

async function scenario(name, baseUrl, body) {
  const home = codexHome(baseUrl, MODEL);
  const app = new AppServer(home);
  try {
    await app.initialize();
    await body(app);
    await new Promise((r) => setTimeout(r, 300));  // trailing notifications
    app.save(name);
  } finally {
    await app.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const threadParams = { model: MODEL, approvalPolicy: 'never', sandbox: 'read-only', ephemeral: true };

fs.mkdirSync(outDir, { recursive: true });
const fast = await startServer(['--model', MODEL]);
const slow = await startServer(['--model', MODEL, '--mock-tokens', '4000', '--mock-tokens-per-s', '50']);
try {
  // A plain turn: developer instructions, one user message, deltas, usage, completed.
  await scenario('turn', fast.url('/v1'), async (app) => {
    await app.request('thread/loaded/list', {});   // the ping ringcast sends
    const t = await app.request('thread/start', { ...threadParams, developerInstructions: 'Answer briefly.' });
    await app.request('turn/start', { threadId: t.result.thread.id, input: text('Say hello') });
    await app.wait(turnDone);
    await app.request('thread/unsubscribe', { threadId: t.result.thread.id });
  });
  // Codex runs one of its own tools (the mock calls get_goal when the prompt names it): two model
  // calls in one turn, two token usage updates.
  await scenario('tool_turn', fast.url('/v1'), async (app) => {
    const t = await app.request('thread/start', threadParams);
    await app.request('turn/start', { threadId: t.result.thread.id, input: text('Please call get_goal now') });
    await app.wait(turnDone);
  });
  // The model's stream fails mid-way (the mock's test aid): error notification, failed turn.
  await scenario('stream_error', fast.url('/v1'), async (app) => {
    const t = await app.request('thread/start', threadParams);
    await app.request('turn/start', { threadId: t.result.thread.id, input: text('hi ringcast-mock:error-after=3') });
    await app.wait(turnDone);
  });
  // A model the provider does not serve: 404 from ringcast, failed turn.
  await scenario('model_not_found', fast.url('/v1'), async (app) => {
    const t = await app.request('thread/start', { ...threadParams, model: 'no-such-model' });
    await app.request('turn/start', { threadId: t.result.thread.id, input: text('Say hello') });
    await app.wait(turnDone);
  });
  // JSON-RPC errors: a turn on a thread that does not exist, bad params.
  await scenario('rpc_errors', fast.url('/v1'), async (app) => {
    await app.request('turn/start', { threadId: '01a242b4-0000-7000-8000-000000000000', input: text('x') });
    await app.request('turn/start', { input: text('x') });
  });
  // turn/interrupt while the (slow) model streams.
  await scenario('interrupt', slow.url('/v1'), async (app) => {
    const t = await app.request('thread/start', threadParams);
    const threadId = t.result.thread.id;
    const turn = await app.request('turn/start', { threadId, input: text('Tell me a long story') });
    await app.wait((m) => m.method === 'item/agentMessage/delta');
    await app.request('turn/interrupt', { threadId, turnId: turn.result.turn.id });
    await app.wait(turnDone);
  });
  // A retained thread: turn, unsubscribe (unloads it), resume by id, second turn.
  await scenario('retained', fast.url('/v1'), async (app) => {
    const t = await app.request('thread/start', { ...threadParams, ephemeral: false });
    const threadId = t.result.thread.id;
    await app.request('turn/start', { threadId, input: text('First question') });
    await app.wait(turnDone);
    await app.request('thread/unsubscribe', { threadId });
    await app.request('thread/resume', { threadId, model: MODEL, approvalPolicy: 'never', sandbox: 'read-only',
                                         excludeTurns: true });
    await app.request('turn/start', { threadId, input: text('Second question') });
    await app.wait(turnDone);
  });
  // A conversation with history: the earlier turns injected as Responses items, the last user
  // turn as the input.
  await scenario('history', fast.url('/v1'), async (app) => {
    const t = await app.request('thread/start', threadParams);
    const threadId = t.result.thread.id;
    await app.request('thread/inject_items', { threadId, items: [
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'My name is Ada' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello Ada' }] }] });
    await app.request('turn/start', { threadId, input: text('What is my name?') });
    await app.wait(turnDone);
    await app.request('thread/unsubscribe', { threadId });
  });
} finally {
  await fast.stop();
  await slow.stop();
}
