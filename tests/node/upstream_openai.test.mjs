// The official OpenAI SDK through ringcast to an `openai` upstream (the fake of
// tests/node/fakes, speaking chat, responses or both): what the client gets, and what the
// upstream received (model mapped, everything else as sent, ringcast's key, not the client's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_KEY, UPSTREAM_KEY, openaiUpstream, withUpstream, wsAction, responsesWs } from './fakes/upstream-setup.mjs';

const models = [{ name: 'gpt-test', upstream: 'fake', upstream_model: 'fake-model' },
                { name: 'embed-test', upstream: 'fake', upstream_model: 'fake-embed' }];
const chatOnly = (fake) => [openaiUpstream('fake', fake.baseURL, { api: 'chat' })];
const responsesOnly = (fake) => [openaiUpstream('fake', fake.baseURL, { api: 'responses' })];
const both = (fake) => [openaiUpstream('fake', fake.baseURL, { api: 'both' })];
const user = (content) => [{ role: 'user', content }];

test('openai upstream: chat whole and streamed, the request forwarded with only the model mapped', async () => {
  await withUpstream({ upstreams: chatOnly, models }, async ({ fake, client }) => {
    const extra = { x_vendor_field: { keep: [1, 2.50, 'three'] }, logprobs: true, top_logprobs: 0,
                    response_format: { type: 'text' }, seed: 3 };
    const whole = await client.chat.completions.create({ model: 'gpt-test', messages: user('hello upstream'), ...extra },
                                                       { headers: { 'x-request-id': 'req-fidelity-1' } });
    assert.equal(whole.model, 'gpt-test');
    assert.equal(whole.choices[0].message.content, 'echo:hello_upstream t1 t2 t3 t4 t5');
    assert.equal(whole.choices[0].logprobs.content.length, 6);
    assert.equal(whole.usage.completion_tokens, 6);
    const rec = fake.generationRequests()[0];
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(rec.body.model, 'fake-model');
    assert.deepEqual(rec.body.x_vendor_field, { keep: [1, 2.5, 'three'] });
    assert.ok(rec.rawBody.includes('"messages":[{"role":"user","content":"hello upstream"}]'), rec.rawBody);
    assert.equal(rec.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.ok(!JSON.stringify(rec.headers).includes(CLIENT_KEY), 'the client key must not reach the upstream');
    assert.equal(rec.headers['x-request-id'], 'req-fidelity-1');

    // Streamed without include_usage: ringcast may ask the upstream for usage, the client gets none.
    let text = '';
    let usageChunks = 0;
    for await (const c of await client.chat.completions.create({ model: 'gpt-test', messages: user('stream me'), stream: true })) {
      assert.equal(c.model, 'gpt-test');
      assert.ok(!('usage' in c), `a usage member the client did not ask for: ${JSON.stringify(c)}`);
      if (c.usage) usageChunks += 1;
      text += c.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'echo:stream_me t1 t2 t3 t4 t5');
    assert.equal(usageChunks, 0);
    // Streamed with include_usage: the usage chunk, last, with empty choices.
    const chunks = [];
    for await (const c of await client.chat.completions.create({ model: 'gpt-test', messages: user('u'), stream: true,
                                                                 stream_options: { include_usage: true }, max_tokens: 3 })) chunks.push(c);
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.equal(chunks.at(-1).usage.completion_tokens, 3);
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
    assert.equal(fake.generationRequests()[2].body.max_tokens, 3);
  });
});

test('openai upstream: tool calls, refusals and n choices pass through, streamed and whole', async () => {
  await withUpstream({ upstreams: chatOnly, models }, async ({ fake, client }) => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const req = { model: 'gpt-test', messages: user('weather in Oslo'), tools, tool_choice: 'required' };
    const whole = await client.chat.completions.create(req);
    assert.equal(whole.choices[0].finish_reason, 'tool_calls');
    const call = whole.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    let args = '';
    let id = null;
    let finish = null;
    for await (const c of await client.chat.completions.create({ ...req, stream: true })) {
      for (const tc of c.choices[0]?.delta?.tool_calls ?? []) { id ??= tc.id; args += tc.function?.arguments ?? ''; }
      finish ??= c.choices[0]?.finish_reason;
    }
    assert.equal(args, call.function.arguments);
    assert.match(id, /^call_/);
    assert.equal(finish, 'tool_calls');
    assert.deepEqual(fake.generationRequests()[0].body.tools, tools);
    fake.script({ refusal: true, text: 'No, sorry.' });
    const refusal = await client.chat.completions.create({ model: 'gpt-test', messages: user('x') });
    assert.equal(refusal.choices[0].message.refusal, 'No, sorry.');
    const two = await client.chat.completions.create({ model: 'gpt-test', messages: user('twice'), n: 2 });
    assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
  });
});

test('openai upstream (responses): passthrough streams and stored follow-ups', async () => {
  await withUpstream({ upstreams: responsesOnly, models }, async ({ fake, client }) => {
    const types = [];
    let first = null;
    for await (const e of await client.responses.create({ model: 'gpt-test', input: 'first', stream: true, metadata: { k: 'v' } })) {
      types.push(e.type);
      if (e.type === 'response.completed') first = e.response;
    }
    assert.deepEqual(types.filter((t, i) => types.indexOf(t) === i), ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added', 'response.output_text.delta', 'response.output_text.done', 'response.content_part.done',
      'response.output_item.done', 'response.completed']);
    assert.equal(first.model, 'gpt-test');
    assert.equal(first.output[0].content[0].text, 'echo:first t1 t2 t3 t4 t5');
    const next = await client.responses.create({ model: 'gpt-test', input: 'second', previous_response_id: first.id });
    assert.equal(next.output_text, 'echo:second t1 t2 t3 t4 t5');
    const recs = fake.generationRequests();
    assert.equal(recs[1].path, '/v1/responses');
    assert.equal(recs[1].body.previous_response_id, first.id);
    assert.deepEqual(recs[0].body.metadata, { k: 'v' });
    await assert.rejects(client.responses.create({ model: 'gpt-test', input: 'x', previous_response_id: 'resp_unknown' }),
      (e) => e.status === 400 && e.code === 'previous_response_not_found');
  });
});

test('openai upstream (chat only): responses translated both ways, ringcast keeps the conversation', async () => {
  await withUpstream({ upstreams: chatOnly, models }, async ({ fake, client }) => {
    const first = await client.responses.create({ model: 'gpt-test', input: 'tell me', instructions: 'Be brief.' });
    assert.equal(first.object, 'response');
    assert.equal(first.status, 'completed');
    assert.equal(first.output_text, 'echo:tell_me t1 t2 t3 t4 t5');
    let rec = fake.generationRequests()[0];
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(rec.body.model, 'fake-model');
    assert.equal(rec.body.messages.at(-1).content, 'tell me');
    assert.ok(JSON.stringify(rec.body.messages).includes('Be brief.'));
    // The follow-up reaches the stateless upstream with the whole conversation.
    const events = [];
    for await (const e of await client.responses.create({ model: 'gpt-test', input: 'and more', previous_response_id: first.id, stream: true })) events.push(e);
    const done = events.at(-1);
    assert.equal(done.type, 'response.completed');
    assert.equal(done.response.output[0].content[0].text, 'echo:and_more t1 t2 t3 t4 t5');
    assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'echo:and_more t1 t2 t3 t4 t5');
    rec = fake.generationRequests()[1];
    const said = rec.body.messages.map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)));
    assert.ok(said.some((s) => s.includes('tell me')) && said.some((s) => s.includes('echo:tell_me')) && said.at(-1).includes('and more'), JSON.stringify(rec.body.messages));
    // Function tools come back as function_call items.
    const call = await client.responses.create({ model: 'gpt-test', input: 'weather', tool_choice: 'required',
                                                 tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} } }] });
    assert.equal(call.output[0].type, 'function_call');
    assert.equal(call.output[0].name, 'get_weather');
  });
});

test('openai upstream (responses only): chat completions translated both ways', async () => {
  await withUpstream({ upstreams: responsesOnly, models }, async ({ fake, client }) => {
    const whole = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'system', content: 'sys' }, ...user('via responses')] });
    assert.equal(whole.object, 'chat.completion');
    assert.equal(whole.choices[0].message.content, 'echo:via_responses t1 t2 t3 t4 t5');
    assert.equal(whole.choices[0].finish_reason, 'stop');
    const rec = fake.generationRequests()[0];
    assert.equal(rec.path, '/v1/responses');
    assert.equal(rec.body.model, 'fake-model');
    let text = '';
    let usage = null;
    for await (const c of await client.chat.completions.create({ model: 'gpt-test', messages: user('streamed'), stream: true, stream_options: { include_usage: true } })) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, 'echo:streamed t1 t2 t3 t4 t5');
    assert.equal(usage.completion_tokens, 6);
  });
});

test('openai upstream: embeddings forwarded, models listed by upstream', async () => {
  await withUpstream({ upstreams: both, models, fakeOptions: { models: ['fake-model', 'fake-embed'] } }, async ({ fake, client }) => {
    const e = await client.embeddings.create({ model: 'embed-test', input: ['one', 'two'], dimensions: 4 });
    assert.equal(e.data.length, 2);
    assert.equal(e.data[0].embedding.length, 4);
    const rec = fake.generationRequests()[0];
    assert.equal(rec.path, '/v1/embeddings');
    assert.equal(rec.body.model, 'fake-embed');
    const ids = [];
    for await (const m of client.models.list()) ids.push([m.id, m.owned_by]);
    assert.deepEqual(ids.filter(([id]) => id.endsWith('-test')).sort(), [['embed-test', 'fake'], ['gpt-test', 'fake']]);
  });
});

test('openai upstream: the WebSocket fronts (/ws actions, Responses WebSocket mode) on typed events', async () => {
  await withUpstream({ upstreams: chatOnly, models }, async ({ srv }) => {
    const wsUrl = srv.url('/ws').replace('http', 'ws');
    const chat = await wsAction(wsUrl, 'chat.completion', { model: 'gpt-test', messages: user('over ws') });
    const last = chat.at(-1);
    assert.equal(last.event, 'chat.complete', JSON.stringify(last));
    assert.equal(last.data.output.text, 'echo:over_ws t1 t2 t3 t4 t5');
    assert.equal(chat.filter((e) => e.event === 'chat.delta').map((e) => e.data.delta).join(''), 'echo:over_ws t1 t2 t3 t4 t5');
    const resp = await wsAction(wsUrl, 'responses.create', { model: 'gpt-test', input: 'ws responses' });
    assert.equal(resp.at(-1).event, 'response.completed', JSON.stringify(resp.at(-1)));
    assert.equal(resp.at(-1).data.response.output[0].content[0].text, 'echo:ws_responses t1 t2 t3 t4 t5');
    const mode = await responsesWs(srv.url('/v1/responses').replace('http', 'ws'), { model: 'gpt-test', input: 'ws mode' });
    assert.equal(mode.at(-1).type, 'response.completed', JSON.stringify(mode.at(-1)));
    assert.equal(mode.at(-1).response.output[0].content[0].text, 'echo:ws_mode t1 t2 t3 t4 t5');
  });
});
