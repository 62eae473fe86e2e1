// Test harness for the Node real-client tests: starts the ringcast binary on 127.0.0.1 with a
// kernel-chosen port, and stops it with SIGTERM, expecting exit 0. All waits are bounded.
import { spawn } from 'node:child_process';
import net from 'node:net';

const BIN = process.env.RINGCAST_BIN;

export async function startServer(args = [], { shards = 1, env = null } = {}) {
  if (!BIN) throw new Error('RINGCAST_BIN is not set (run through ctest)');
  // No load balancer to tell: stop without the drain grace period unless a test asks for one.
  const grace = args.includes('--drain-grace-ms') ? [] : ['--drain-grace-ms', '0'];
  const proc = spawn(BIN, ['--listen', '127.0.0.1:0', '--shards', String(shards), '--no-pin', ...grace, ...args],
                     { stdio: ['ignore', 'ignore', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ringcast did not start:\n' + log)), 15000);
    proc.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error(`ringcast exited (${code}):\n` + log)));
  });
  const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    port,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    log: () => log,
    // Sends a signal (a test of draining); exitCode() resolves with the exit code.
    signal: (name) => proc.kill(name),
    exitCode: () => exited,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      let timer;
      const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), 20000); });
      proc.kill('SIGTERM');
      const code = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (code === 'timeout') { proc.kill('SIGKILL'); throw new Error('ringcast did not exit:\n' + log); }
      if (code !== 0) throw new Error(`ringcast exited with ${code}:\n` + log);
      return code;
    },
  };
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Resolves when `predicate()` is true; rejects after `timeoutMs`.
export async function waitFor(predicate, timeoutMs = 10000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// sum(name{labels}) over the Prometheus text `text`, as a query would: every sample of `name`
// whose labels include `labels` (ringcast exports per-shard series only, no pre-summed total).
export function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

// A TCP proxy on 127.0.0.1 whose connections the test can cut, to make clients reconnect.
export async function startProxy(targetPort) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client); sockets.add(upstream);
    client.pipe(upstream); upstream.pipe(client);
    const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', drop); upstream.on('error', drop); client.on('close', drop); upstream.on('close', drop);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    cutAll() { for (const s of sockets) s.destroy(); sockets.clear(); },
    close() { this.cutAll(); return new Promise((r) => server.close(r)); },
  };
}

export async function postJson(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers },
                                 body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: await res.json() };
}
