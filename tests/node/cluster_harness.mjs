// Cluster harness for the Node tests: runs tests/integration/nats_cluster.py in serve mode (3
// nats-server processes in a JetStream cluster + N ringcast nodes on loopback) and drives it over
// its stdin: kill/start a NATS server or a ringcast node. Closing stdin tears everything down
// (the fixture checks that every node exits 0 on SIGTERM). Also a small TCP load balancer: each
// new connection goes to the first backend that accepts, so clients fail over when a node dies.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(HERE, '..', 'integration', 'nats_cluster.py');
const PYTHON = process.env.RINGCAST_PYTHON || '/usr/bin/python3';

export async function startCluster({ nodes = 3, shards = 1, leaseMs = 1500, nodeArgs = [] } = {}) {
  if (!process.env.RINGCAST_BIN) throw new Error('RINGCAST_BIN is not set (run through ctest)');
  const args = [FIXTURE, 'serve', '--nodes', String(nodes), '--shards', String(shards),
                '--lease-ms', String(leaseMs), '--', ...nodeArgs.map(String)];
  const proc = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (chunk) => { log += chunk.toString(); });
  const lines = readline.createInterface({ input: proc.stdout });
  const waiting = [];
  const buffered = [];
  lines.on('line', (line) => {
    const msg = JSON.parse(line);
    if (waiting.length) waiting.shift()(msg); else buffered.push(msg);
  });
  const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  const next = (timeoutMs, what) => new Promise((resolve, reject) => {
    if (buffered.length) { resolve(buffered.shift()); return; }
    const timer = setTimeout(() => reject(new Error(`cluster fixture: no answer to ${what}:\n${log}`)), timeoutMs);
    waiting.push((msg) => { clearTimeout(timer); resolve(msg); });
    exited.then((code) => { clearTimeout(timer); reject(new Error(`cluster fixture exited (${code}):\n${log}`)); });
  });
  let state = await next(90000, 'start');
  const url = (i, p = '/') => `http://127.0.0.1:${state.nodes[i]}${p}`;
  async function command(cmd) {
    proc.stdin.write(cmd + '\n');
    const answer = await next(60000, cmd);
    if (!answer.ok) throw new Error(`${cmd}: ${answer.error}`);
    state = answer;
    return answer;
  }
  return {
    get ports() { return state.nodes; },
    url,
    log: () => log,
    killNats: (i) => command(`kill-nats ${i}`),
    startNats: (i) => command(`start-nats ${i}`),
    killNode: (i) => command(`kill-node ${i}`),
    startNode: (i) => command(`start-node ${i}`),
    async stop() {
      proc.stdin.end();
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), 60000); });
      const code = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (code === 'timeout') { proc.kill('SIGKILL'); throw new Error('cluster fixture did not exit:\n' + log); }
      if (code !== 0) throw new Error(`cluster fixture exited with ${code}:\n` + log);
    },
  };
}

// A TCP load balancer on 127.0.0.1: a new connection goes to the first of `backends()` (ports)
// that accepts it; an established one is cut when either side closes.
export async function startBalancer(backends) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    client.pause();
    const ports = backends().filter((p) => p);
    const tryNext = (k) => {
      if (k >= ports.length) { client.destroy(); return; }
      const upstream = net.connect(ports[k], '127.0.0.1');
      let connected = false;
      upstream.once('error', () => { if (!connected) tryNext(k + 1); });
      upstream.once('connect', () => {
        connected = true;
        sockets.add(client); sockets.add(upstream);
        client.pipe(upstream); upstream.pipe(client); client.resume();
        const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
        client.on('error', drop); upstream.on('error', drop); client.on('close', drop); upstream.on('close', drop);
      });
    };
    tryNext(0);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    close() { for (const s of sockets) s.destroy(); sockets.clear(); return new Promise((r) => server.close(r)); },
  };
}
