// A real `nats-server -js` on a kernel-chosen loopback port, and a readiness wait for ringcast
// nodes joined by it (responses_cluster.test.mjs, responses_ws_cluster.test.mjs).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './harness.mjs';

export async function startNats() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-nats-'));
  const proc = spawn('nats-server', ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', '-1'],
                     { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('nats-server did not start:\n' + log)), 15000);
    proc.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('error', reject);
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      let timer;
      await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(resolve, 10000); })]);
      clearTimeout(timer);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Ready, and every shard can ask the bucket (an unknown id is a 404, not a 503).
export async function waitReady(srv) {
  const deadline = Date.now() + 20000;
  const probes = ['/readyz', '/v1/responses/resp_0_0000000000000000', '/v1/responses/resp_1_0000000000000000'];
  for (const probe of probes) {
    const want = probe === '/readyz' ? 200 : 404;
    for (;;) {
      try {
        if ((await fetch(srv.url(probe))).status === want) break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`node not ready (${probe}):\n` + srv.log());
      await sleep(50);
    }
  }
}

// One JetStream API request over a fresh raw NATS connection (the text protocol, by hand):
// resolves with the reply's payload (JSON parsed).
export async function natsRequest(url, subject, payload, timeoutMs = 5000) {
  const { hostname, port } = new URL(url.replace('nats://', 'http://'));
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no reply on ${subject}`)); }, timeoutMs);
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.once('connect', () => {
      sock.write('CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\nSUB _INBOX.rctest 1\r\n' +
                 `PUB ${subject} _INBOX.rctest ${Buffer.byteLength(payload)}\r\n${payload}\r\n`);
    });
    sock.on('data', (chunk) => {
      buf += chunk.toString();
      if (buf.includes('PING\r\n')) sock.write('PONG\r\n');
      const m = /MSG _INBOX\.rctest 1 (\d+)\r\n/.exec(buf);
      if (!m) return;
      const start = m.index + m[0].length;
      const size = Number(m[1]);
      if (Buffer.byteLength(buf.slice(start)) < size + 2) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(JSON.parse(buf.slice(start, start + size)));
    });
  });
}

// Waits until the rc_responses bucket holds `key` (writes are asynchronous).
export async function waitKvKey(url, key, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await natsRequest(url, '$JS.API.STREAM.MSG.GET.KV_rc_responses',
                                JSON.stringify({ last_by_subj: `$KV.rc_responses.${key}` }));
    if (r.message) return;
    if (Date.now() > deadline) throw new Error(`bucket key ${key} not written: ${JSON.stringify(r)}`);
    await sleep(25);
  }
}
