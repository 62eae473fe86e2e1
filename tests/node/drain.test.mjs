// Draining as the official OpenAI Node SDK sees it: a stream in progress when SIGTERM arrives
// finishes normally; one still running at --drain-timeout-ms ends with an error the SDK throws,
// never with a normal-looking end (finish_reason null and half a text).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { metricSum, startServer, sleep } from './harness.mjs';

const MODEL = 'ringcast-mock';

// Resolves once the server runs `n` generations (so a signal finds the request in progress).
async function generationsRunning(srv, n) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    const text = await (await fetch(srv.url('/metrics'))).text();
    if (metricSum(text, 'ringcast_engine_streams') === n) return;
    await sleep(20);
  }
  throw new Error(`the server never ran ${n} generation(s)`);
}

async function withDrainingServer(args, fn) {
  const srv = await startServer(args);
  const client = new OpenAI({ apiKey: 'test-key', baseURL: srv.url('/v1'), maxRetries: 0, timeout: 30000 });
  try {
    await fn(client, srv);
    assert.equal(await srv.exitCode(), 0, srv.log());
  } finally {
    await srv.stop();
  }
}

test('SIGTERM lets a streaming chat completion finish', async () => {
  await withDrainingServer(['--mock-tokens-per-s', '40', '--drain-timeout-ms', '30000'], async (client, srv) => {
    const stream = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'drain' }], max_tokens: 40, stream: true,
    });
    let text = '';
    let finish = null;
    let signalled = false;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta?.content) text += choice.delta.content;
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (text && !signalled) { srv.signal('SIGTERM'); signalled = true; }
    }
    assert.ok(signalled);
    assert.equal(finish, 'length');
    const whole = text;
    assert.ok(whole.length > 0);
  });
});

test('a stream still running at the drain deadline ends with an error the SDK throws', async () => {
  await withDrainingServer(['--mock-tokens-per-s', '20', '--drain-timeout-ms', '500'], async (client, srv) => {
    const stream = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'drain' }], max_tokens: 1000, stream: true,
    });
    let finish = null;
    let signalled = false;
    await assert.rejects(async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
        if (!signalled) { srv.signal('SIGTERM'); signalled = true; }
      }
    }, (err) => {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.code, 'draining');
      return true;
    });
    assert.equal(finish, null);
  });
});

test('a non-streaming request still running at the drain deadline gets 503', async () => {
  await withDrainingServer(['--mock-tokens-per-s', '20', '--drain-timeout-ms', '500'], async (client, srv) => {
    const pending = client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'drain' }], max_tokens: 1000,
    });
    await generationsRunning(srv, 1);
    srv.signal('SIGTERM');
    await assert.rejects(pending, (err) => {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 503);
      assert.equal(err.code, 'draining');
      return true;
    });
  });
});
