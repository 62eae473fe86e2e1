// The parity harness's scenarios: what a client asks, on which fronts. run(client, front) sends
// the scenario's requests through one front's client (fronts.mjs) and returns the exchanges.
// The JSON fronts send the bodies as they are; the SSE fronts add "stream": true; the WebSocket
// fronts send them as `/ws` payloads or response.create messages. The mock's output is a function
// of the prompt and `seed`, so every engine that is the mock (directly, through an `openai`
// upstream, or as the reference worker) must give the same transcripts.
import { EMBEDDING_FRONTS, FRONTS, STREAMING, api, responseOf } from './fronts.mjs';

export const MODEL = 'ringcast-mock';

const WEATHER = { name: 'get_weather', description: 'The weather in a city',
                  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
                                required: ['city'] } };
const WORDS = { name: 'word_count', description: 'Counts words',
                parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } };
const chatTools = [WEATHER, WORDS].map((f) => ({ type: 'function', function: f }));
const responsesTools = [WEATHER, WORDS].map((f) => ({ type: 'function', ...f }));

const chatBase = { model: MODEL, seed: 11,
                   messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'parity please' }] };
const responsesBase = { model: MODEL, seed: 11, instructions: 'You are terse.', input: 'parity please' };

// A conversation with a tool round trip already in it, then a new question.
const chatHistory = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is the weather in Paris? Use get_weather.' },
  { role: 'assistant', content: null,
    tool_calls: [{ id: 'call_hist1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_hist1', content: '{"temp_c":21,"sky":"clear"}' },
  { role: 'assistant', content: 'It is 21 °C and clear in Paris.' },
  { role: 'user', content: 'And what should I wear?' },
];
const responsesHistory = [
  { type: 'message', role: 'user', content: 'What is the weather in Paris? Use get_weather.' },
  { type: 'function_call', call_id: 'call_hist1', name: 'get_weather', arguments: '{"city":"Paris"}' },
  { type: 'function_call_output', call_id: 'call_hist1', output: '{"temp_c":21,"sky":"clear"}' },
  { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'It is 21 °C and clear in Paris.' }] },
  { type: 'message', role: 'user', content: 'And what should I wear?' },
];

export const SCENARIOS = [
  {
    // A plain request answered as one JSON object.
    name: 'baseline', fronts: ['chat_json', 'responses_json'],
    run: (c, front) => sequence(c, [api(front) === 'chat' ? chatBase : responsesBase]),
  },
  {
    // The same request, streamed (chat with the usage chunk).
    name: 'streaming', fronts: FRONTS.filter((f) => STREAMING.has(f)),
    run: (c, front) => sequence(c, [front === 'chat_sse' ? { ...chatBase, stream_options: { include_usage: true } }
                                     : api(front) === 'chat' ? chatBase : responsesBase]),
  },
  {
    // Tools offered; one forced by tool_choice, then one chosen because the prompt names it.
    name: 'tool_call', fronts: FRONTS,
    run: (c, front) => sequence(c, api(front) === 'chat' ? [
      { ...chatBase, tools: chatTools, tool_choice: { type: 'function', function: { name: 'get_weather' } } },
      { ...chatBase, messages: [{ role: 'user', content: 'count the words with word_count' }], tools: chatTools,
        tool_choice: 'auto', parallel_tool_calls: false },
    ] : [
      { ...responsesBase, tools: responsesTools, tool_choice: { type: 'function', name: 'get_weather' } },
      { ...responsesBase, input: 'count the words with word_count', tools: responsesTools, tool_choice: 'auto',
        parallel_tool_calls: false },
    ]),
  },
  {
    // History with an assistant turn and tool outputs; on Responses also a tool round trip
    // continued by previous_response_id.
    name: 'multi_turn', fronts: FRONTS,
    async run(c, front) {
      if (api(front) === 'chat') return sequence(c, [{ ...chatBase, messages: chatHistory, tools: chatTools }]);
      const out = await sequence(c, [
        { ...responsesBase, input: responsesHistory, tools: responsesTools },
        { ...responsesBase, input: 'What is the weather in Oslo? Use get_weather.', tools: responsesTools },
      ]);
      const first = responseOf(out[1]);
      const call = first?.output?.find((i) => i.type === 'function_call');
      if (!call) throw new Error(`${front}: multi_turn: no function_call to answer in ${JSON.stringify(out[1]).slice(0, 800)}`);
      out.push(await c.send({ model: MODEL, seed: 11, previous_response_id: first.id, tools: responsesTools,
                              input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp_c":-3}' }] }));
      return out;
    },
  },
  {
    // Chat: n = 2 with a stop sequence and max_tokens, one choice ending by the stop sequence and
    // one by length. Responses: max_output_tokens reached (an incomplete response).
    name: 'n_stop_length', fronts: FRONTS,
    run: (c, front) => sequence(c, [api(front) === 'chat'
      ? { model: MODEL, seed: 3, messages: [{ role: 'user', content: 'parity please' }], n: 2, max_tokens: 3, stop: [' fast'] }
      : { ...responsesBase, max_output_tokens: 16 }]),
  },
  {
    // An invalid request (400 naming the field), an unknown model (404), and a request only the
    // engine refuses (more tokens than the mock's --mock-max-tokens: 400 from the engine).
    name: 'errors', fronts: FRONTS,
    run: (c, front) => sequence(c, api(front) === 'chat' ? [
      { ...chatBase, messages: [{ role: 'wizard', content: 'x' }] },
      { ...chatBase, model: 'no-such-model' },
      refusedByEngine({ ...chatBase, max_tokens: 100000 }),
    ] : [
      { ...responsesBase, temperature: 'hot' },
      { ...responsesBase, model: 'no-such-model' },
      refusedByEngine({ ...responsesBase, max_output_tokens: 100000 }),
    ]),
  },
  {
    // Embeddings of several inputs, shortened by `dimensions`, as floats and as base64.
    name: 'embeddings', fronts: EMBEDDING_FRONTS,
    run: (c) => sequence(c, [
      { model: MODEL, input: ['parity', 'two words'], dimensions: 6 },
      { model: MODEL, input: 'parity', dimensions: 4, encoding_format: 'base64' },
    ]),
  },
];

// A request the engine refuses, not ringcast's fronts: its exchange says so ("refused_by":
// "engine"), which the engines whose refusals are worded by someone else rely on (parity.mjs).
const REFUSED = Symbol('refused by the engine');
function refusedByEngine(body) {
  return { [REFUSED]: true, body };
}

async function sequence(client, bodies) {
  const out = [];
  for (const b of bodies) {
    if (b[REFUSED]) out.push({ ...(await client.send(b.body)), refused_by: 'engine' });
    else out.push(await client.send(b));
  }
  return out;
}
