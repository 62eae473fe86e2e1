// A real `nats-server -js` on a kernel-chosen loopback port, and a readiness wait for ringcast
// nodes joined by it (as in responses_cluster.test.mjs).
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
