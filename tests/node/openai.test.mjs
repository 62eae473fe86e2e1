// The official OpenAI Node SDK, unmodified, against ringcast's built-in mock engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer } from './harness.mjs';

const MODEL = 'ringcast-mock';

async function withClient(args, fn, opts = {}) {
  const srv = await startServer(args, opts);
  const client = new OpenAI({ apiKey: 'test-key', baseURL: srv.url('/v1'), maxRetries: 0, timeout: 20000 });
  try {
    await fn(client, srv);
  } finally {
    await srv.stop();
  }
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
                    days: { type: 'integer' } },
      required: ['city'],
    },
  },
};

test('chat completion, non-streaming', async () => {
  await withClient([], async (client) => {
    const c = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Tell me about rivers' }], max_tokens: 12, seed: 7,
    });
    assert.equal(c.object, 'chat.completion');
    assert.match(c.id, /^chatcmpl-/);
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.equal(typeof c.choices[0].message.content, 'string');
    assert.ok(c.choices[0].message.content.length > 0);
    assert.equal(c.choices[0].finish_reason, 'length');
    assert.equal(c.usage.completion_tokens, 12);
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
    // Deterministic: the same request, the same text.
    const again = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Tell me about rivers' }], max_tokens: 12, seed: 7,
    });
    assert.equal(again.choices[0].message.content, c.choices[0].message.content);
  });
});

test('chat completion, streaming with usage, matches non-streaming', async () => {
  await withClient([], async (client) => {
    const request = { model: MODEL, messages: [{ role: 'user', content: 'Stream it' }], max_tokens: 20, n: 2 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    const text = ['', ''];
    const finish = [];
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) { usage = chunk.usage; assert.deepEqual(chunk.choices, []); continue; }
      for (const ch of chunk.choices) {
        if (ch.delta.content) text[ch.index] += ch.delta.content;
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
    }
    assert.ok(chunks > 20);
    assert.deepEqual(text, whole.choices.map((c) => c.message.content));
    assert.deepEqual(finish, ['length', 'length']);
    assert.deepEqual(usage, whole.usage);
  });
});

test('chat completion with tools: streamed and whole tool calls agree', async () => {
  await withClient([], async (client) => {
    const request = { model: MODEL, messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
                      tools: [weatherTool], tool_choice: 'required' };
    const whole = await client.chat.completions.create(request);
    const call = whole.choices[0].message.tool_calls[0];
    assert.equal(whole.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments);
    assert.equal(typeof args.city, 'string');
    assert.ok(['celsius', 'fahrenheit'].includes(args.unit));
    // The SDK's stream helper reassembles the fragments.
    const runner = client.chat.completions.stream(request);
    const final = await runner.finalChatCompletion();
    assert.deepEqual(final.choices[0].message.tool_calls.map((c) => [c.id, c.function.name, c.function.arguments]),
                     [[call.id, call.function.name, call.function.arguments]]);
  });
});

test('responses, non-streaming and streaming, with previous_response_id', async () => {
  await withClient([], async (client) => {
    const first = await client.responses.create({ model: MODEL, input: 'Remember the word harbor.' });
    assert.equal(first.object, 'response');
    assert.equal(first.status, 'completed');
    assert.match(first.id, /^resp_/);
    assert.ok(first.output_text.length > 0);
    assert.ok(first.usage.output_tokens > 0);

    const types = [];
    let completed = null;
    const stream = await client.responses.create({ model: MODEL, input: 'And now?', previous_response_id: first.id, stream: true });
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.completed') completed = event.response;
    }
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
                                         'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done',
                                       'response.output_item.done', 'response.completed']);
    assert.equal(completed.previous_response_id, first.id);
    assert.ok(completed.output.length === 1);
    // The history counts as input: the follow-up has more input tokens than its own prompt.
    assert.ok(completed.usage.input_tokens > first.usage.input_tokens);

    await assert.rejects(client.responses.create({ model: MODEL, input: 'x', previous_response_id: 'resp_0_0000000000000000' }),
                         (err) => err instanceof OpenAI.BadRequestError && err.status === 400 &&
                                  err.code === 'previous_response_not_found');
  }, { shards: 2 });
});

test('embeddings (float and the SDK default base64) and models', async () => {
  await withClient(['--mock-embedding-dim', '64', '--model', MODEL, '--model', 'other-model'], async (client) => {
    const floats = await client.embeddings.create({ model: MODEL, input: ['alpha', 'beta'], encoding_format: 'float' });
    assert.equal(floats.data.length, 2);
    assert.equal(floats.data[0].embedding.length, 64);
    const norm = Math.sqrt(floats.data[0].embedding.reduce((s, v) => s + v * v, 0));
    assert.ok(Math.abs(norm - 1) < 1e-5);
    const b64 = await client.embeddings.create({ model: MODEL, input: ['alpha', 'beta'] });
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(b64.data[0].embedding[i] - floats.data[0].embedding[i]) < 1e-6);
    const dims = await client.embeddings.create({ model: MODEL, input: 'x', dimensions: 8 });
    assert.equal(dims.data[0].embedding.length, 8);
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    assert.deepEqual(models, [MODEL, 'other-model']);
  });
});

test('bad requests surface as typed APIErrors', async () => {
  await withClient([], async (client) => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
                         (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }),
                         (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'messages');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }),
                         (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[0].role');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }),
                         (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 10 ** 9 }),
                         (e) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens');
    await assert.rejects(client.embeddings.create({ model: MODEL, input: '' }),
                         (e) => e instanceof OpenAI.BadRequestError && e.param === 'input');
  });
});

test('API keys and rate limits as the SDK sees them', async () => {
  const srv = await startServer(['--api-key', 'sk-test', '--rate-limit-rps', '1', '--rate-limit-burst', '2']);
  try {
    const client = (apiKey, maxRetries = 0) => new OpenAI({ apiKey, baseURL: srv.url('/v1'), maxRetries });
    await assert.rejects(client('sk-nope').models.list(),
                         (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
    const good = client('sk-test');
    await good.models.list();
    await good.models.list();
    await assert.rejects(good.models.list(), (e) => e instanceof OpenAI.RateLimitError && e.status === 429 &&
                                                    Number(e.headers.get('retry-after')) >= 1 &&
                                                    e.headers.get('x-ratelimit-limit-requests') === '60');
    // The SDK retries 429s itself, waiting as Retry-After says, and gets through.
    const page = await client('sk-test', 3).models.list();
    assert.equal(page.data[0].id, MODEL);
  } finally {
    await srv.stop();
  }
});

test('stored responses: retrieve, input items (paged), delete, and models.retrieve', async () => {
  await withClient([], async (client) => {
    // The SDK keeps one connection, so everything here runs on one shard; routing to a response's
    // home shard from the others is tested in test_api_routes.py (a new connection per request).
    const created = [];
    for (let i = 0; i < 6; i++) {
      created.push(await client.responses.create({
        model: MODEL,
        input: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: `Question ${i}` },
          { role: 'assistant', content: 'An earlier answer' },
          { role: 'user', content: `Follow-up ${i}` },
        ],
      }));
    }
    for (const r of created) {
      const got = await client.responses.retrieve(r.id);
      assert.deepEqual(got, await client.responses.retrieve(r.id));
      assert.equal(got.id, r.id);
      assert.equal(got.object, 'response');
      assert.equal(got.status, r.status);
      assert.equal(got.output_text, r.output_text);
      assert.deepEqual(got.usage, r.usage);

      // Default order is newest first; the SDK pages through with `after` by itself.
      const items = [];
      for await (const item of client.responses.inputItems.list(r.id, { limit: 3 })) items.push(item);
      assert.equal(items.length, 4);
      assert.deepEqual(items.map((it) => it.role), ['user', 'assistant', 'user', 'system']);
      assert.equal(items[3].content[0].type, 'input_text');
      assert.equal(items[1].content[0].type, 'output_text');
      assert.ok(items.every((it) => it.type === 'message' && typeof it.id === 'string' && it.id.length > 0));
      const asc = await client.responses.inputItems.list(r.id, { order: 'asc', limit: 2 });
      assert.deepEqual(asc.data.map((it) => it.id), [items[3].id, items[2].id]);
      assert.equal(asc.has_more, true);
    }
    const deleted = await client.responses.delete(created[0].id);
    assert.deepEqual(deleted, { id: created[0].id, object: 'response', deleted: true });
    await assert.rejects(client.responses.retrieve(created[0].id),
                         (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
    await assert.rejects(client.responses.delete(created[0].id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(client.responses.inputItems.list(created[0].id), (e) => e instanceof OpenAI.NotFoundError);
    const unstored = await client.responses.create({ model: MODEL, input: 'not kept', store: false });
    await assert.rejects(client.responses.retrieve(unstored.id), (e) => e instanceof OpenAI.NotFoundError);

    const model = await client.models.retrieve(MODEL);
    assert.deepEqual(Object.keys(model).sort(), ['created', 'id', 'object', 'owned_by']);
    assert.equal(model.id, MODEL);
    assert.equal(model.object, 'model');
    await assert.rejects(client.models.retrieve('no-such-model'),
                         (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  });
});
