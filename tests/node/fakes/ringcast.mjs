// Harness helpers for the upstream tests: ringcast started with a TOML config (written to a
// temporary file) and environment variables (the upstreams' API keys), a second ringcast on
// its mock engine to serve as a real upstream, and a TCP black hole (a listener that never
// accepts, for connect timeouts). Everything listens on 127.0.0.1 with kernel-chosen ports.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../harness.mjs';

// TOML for `{ upstreams: [{…}], models: [{…}], key: value }`: arrays of objects become arrays
// of tables, plain objects inside a table inline tables; strings are JSON-quoted (a TOML basic
// string for everything the tests use).
export function toToml(doc) {
  const value = (v) => {
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (Array.isArray(v)) return `[${v.map(value).join(', ')}]`;
    if (v && typeof v === 'object') return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)} = ${value(x)}`).join(', ')} }`;
    throw new Error(`no TOML for ${v}`);
  };
  const top = [];
  const tables = [];
  for (const [key, v] of Object.entries(doc)) {
    if (Array.isArray(v) && v.length > 0 && v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      for (const t of v) {
        tables.push(`[[${key}]]`);
        for (const [k, x] of Object.entries(t)) if (x !== undefined) tables.push(`${k} = ${value(x)}`);
        tables.push('');
      }
    } else if (v !== undefined) {
      top.push(`${key.replace(/-/g, '_')} = ${value(v)}`);
    }
  }
  return [...top, '', ...tables].join('\n');
}

// Starts ringcast with `config` (a TOML string, or an object for toToml) in a temporary file,
// `env` added to its environment, and `args` after --config. Returns the harness's server plus
// configPath and rewrite(config) (replaces the file; send SIGHUP to reload).
export async function startRingcast({ config = '', env = {}, args = [], shards = 1 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-cfg-'));
  const configPath = path.join(dir, 'ringcast.toml');
  const text = typeof config === 'string' ? config : toToml(config);
  fs.writeFileSync(configPath, text);
  let srv;
  try {
    srv = await startServer(['--config', configPath, ...args], { shards, env });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${e.message}\n--- config ---\n${text}`);
  }
  const stop = srv.stop.bind(srv);
  return Object.assign(srv, {
    configPath,
    baseURL: srv.url('/v1'),
    rewrite: (next) => fs.writeFileSync(configPath, typeof next === 'string' ? next : toToml(next)),
    async stop() {
      try { return await stop(); } finally { fs.rmSync(dir, { recursive: true, force: true }); }
    },
  });
}

// A second ringcast on its built-in mock engine, to be another ringcast's upstream.
export async function startMockUpstream(args = [], { shards = 1 } = {}) {
  const srv = await startServer(args, { shards });
  return Object.assign(srv, { baseURL: srv.url('/v1') });
}

// A TCP port that never completes a connection: a listener (python3, a child process) that
// never accepts and whose one-slot backlog it fills itself, so further SYNs are dropped and
// connect() hangs until the client's own timeout. close() kills it.
export async function startBlackHole() {
  const script = [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'port = s.getsockname()[1]',
    'fill = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'time.sleep(0.2)',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const proc = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('black hole did not start')), 10000);
    proc.stdout.once('data', (d) => { clearTimeout(timer); resolve(Number(d.toString().trim())); });
    proc.once('exit', (code) => reject(new Error(`black hole exited (${code})`)));
  });
  return {
    port,
    close: () => new Promise((resolve) => { proc.once('exit', resolve); proc.stdin.end(); proc.kill(); }),
  };
}

// The OpenAI fake in a child process (fake-process.mjs): { baseURL, port, call(cmd, extra),
// close() }. call('requests') returns the records with absolute times (ms since the epoch).
export async function startFakeProcess(options = {}) {
  const { fork } = await import('node:child_process');
  const child = fork(new URL('./fake-process.mjs', import.meta.url).pathname, [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  let next = 1;
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the fake process did not start')), 15000);
    child.once('exit', (code) => reject(new Error(`the fake process exited (${code})`)));
    child.on('message', (m) => {
      if (m.ready) { clearTimeout(timer); resolve(m); return; }
      pending.get(m.id)?.(m.result);
      pending.delete(m.id);
    });
  });
  const call = (cmd, extra = {}) => new Promise((resolve) => {
    const id = next++;
    pending.set(id, resolve);
    child.send({ id, cmd, ...extra });
  });
  return {
    ...ready,
    call,
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await call('close');
      await exited;
    },
  };
}
