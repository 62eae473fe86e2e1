// The official OpenAI Node SDK against two ringcast nodes joined by a real `nats-server -js`: a
// response created through node 1 is continued, retrieved, listed and deleted through node 2
// (the rc_responses key-value bucket, docs/api.md "Across nodes").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, sleep } from './harness.mjs';
import { startNats, waitReady } from './nats_helpers.mjs';

const MODEL = 'ringcast-mock';

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
