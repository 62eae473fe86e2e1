// The official OpenAI Node SDK against two ringcast nodes joined by a real `nats-server -js`: a
// response created through node 1 is continued, retrieved, listed and deleted through node 2
// (the rc_responses key-value bucket, docs/api.md "Across nodes").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, sleep } from './harness.mjs';

const MODEL = 'ringcast-mock';

async function startNats() {
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
async function waitReady(srv) {
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

async function bucketWrites(srv) {
  const text = await (await fetch(srv.url('/metrics'))).text();
  let n = 0;
  for (const m of text.matchAll(/^ringcast_responses_kv_writes_total\{shard="\d+",result="ok"\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}

test('responses cluster: the openai SDK continues, retrieves and deletes on another node', async () => {
  const nats = await startNats();
  const nodes = [];
  try {
    for (const name of ['sdk1', 'sdk2']) {
      nodes.push(await startServer(['--nats', nats.url, '--node-id', name], { shards: 2 }));
    }
    await Promise.all(nodes.map(waitReady));
    const [one, two] = nodes.map((srv) => new OpenAI({ apiKey: 'k', baseURL: srv.url('/v1'), maxRetries: 0, timeout: 20000 }));

    const first = await one.responses.create({ model: MODEL, input: [{ role: 'user', content: 'Tell me about rivers' }] });
    for (let i = 0; i < 200 && (await bucketWrites(nodes[0])) < 1; i++) await sleep(25);

    const next = await two.responses.create({ model: MODEL, input: 'and lakes?', previous_response_id: first.id });
    assert.equal(next.previous_response_id, first.id);
    assert.equal(next.status, 'completed');
    const fresh = await two.responses.create({ model: MODEL, input: 'and lakes?' });
    assert.ok(next.usage.input_tokens > fresh.usage.input_tokens, 'the follow-up carried the conversation');

    // Streaming follow-up through node 2 as well.
    const stream = await two.responses.create({ model: MODEL, input: 'and seas?', previous_response_id: first.id, stream: true });
    let completed = null;
    for await (const ev of stream) if (ev.type === 'response.completed') completed = ev.response;
    assert.equal(completed.previous_response_id, first.id);

    const got = await two.responses.retrieve(first.id);
    assert.equal(got.id, first.id);
    assert.deepEqual(got.output, first.output);
    const items = [];
    for await (const item of two.responses.inputItems.list(first.id)) items.push(item);
    assert.equal(items.length, 1);
    assert.equal(items[0].content[0].text, 'Tell me about rivers');

    await two.responses.delete(first.id);
    await assert.rejects(two.responses.retrieve(first.id), (e) => e.status === 404);
    // Node 1 hears of the deletion and forgets its own copy.
    let gone = false;
    for (let i = 0; i < 200 && !gone; i++) {
      gone = await one.responses.retrieve(first.id).then(() => false, (e) => e.status === 404);
      if (!gone) await sleep(25);
    }
    assert.ok(gone, 'node 1 still serves the deleted response');
  } finally {
    for (const srv of nodes) await srv.stop();
    await nats.stop();
  }
});
