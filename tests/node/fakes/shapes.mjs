// Wire shapes of the OpenAI API as the fake upstreams produce them: chat.completion objects and
// chat.completion.chunk stream chunks, Responses objects and their streaming events, embeddings,
// and the error envelope. Written from the public API reference (field names, nesting, event
// order), independently of ringcast's code, so that a test comparing the two compares two
// readings of the reference rather than one implementation with itself.
//
// Everything here is pure: a generation is described by a `plan` (what to say, whether to call
// a tool, how it ends) and the builders turn it into objects. The servers decide timing.
import crypto from 'node:crypto';

export function randomId(prefix, bytes = 12) {
  return prefix + crypto.randomBytes(bytes).toString('hex');
}

export function nowSeconds() { return Math.floor(Date.now() / 1000); }

// The error envelope: always the four keys, absent ones null.
export function errorEnvelope({ message, type = 'invalid_request_error', param = null, code = null }) {
  return { error: { message, type, param, code } };
}

// Default error bodies for the statuses the scripts ask for, shaped like the real API's.
export function defaultError(status) {
  switch (status) {
    case 400: return { message: 'Invalid request.', type: 'invalid_request_error', code: null };
    case 401: return { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' };
    case 403: return { message: 'You are not allowed to sample from this model.', type: 'invalid_request_error', code: null };
    case 404: return { message: 'The model does not exist or you do not have access to it.', type: 'invalid_request_error', code: 'model_not_found' };
    case 429: return { message: 'Rate limit reached for requests.', type: 'requests', code: 'rate_limit_exceeded' };
    case 500: return { message: 'The server had an error while processing your request.', type: 'server_error', code: null };
    case 502: return { message: 'Bad gateway.', type: 'server_error', code: null };
    case 503: return { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', code: null };
    default: return { message: `Error ${status}.`, type: 'server_error', code: null };
  }
}

// The text of the last user turn of a chat request or a Responses input, for echoing.
export function lastUserText(body) {
  const fromContent = (c) => {
    if (typeof c === 'string') return c;
    if (Array.isArray(c)) return c.map((p) => p?.text ?? '').filter(Boolean).join(' ');
    return '';
  };
  if (Array.isArray(body.messages)) {
    for (let i = body.messages.length - 1; i >= 0; i--) {
      if (body.messages[i]?.role === 'user') return fromContent(body.messages[i].content);
    }
    return '';
  }
  if (typeof body.input === 'string') return body.input;
  if (Array.isArray(body.input)) {
    for (let i = body.input.length - 1; i >= 0; i--) {
      const item = body.input[i];
      if (item?.role === 'user') return fromContent(item.content);
    }
  }
  return '';
}

// Rough token counts: words. Deterministic, which is all the tests need.
export function countWords(text) { return (text.match(/\S+/g) ?? []).length; }

function promptWords(body) {
  let text = '';
  if (Array.isArray(body.messages)) text = body.messages.map((m) => JSON.stringify(m.content ?? '')).join(' ');
  else text = JSON.stringify(body.input ?? '') + ' ' + (body.instructions ?? '');
  return Math.max(1, countWords(text));
}

// The plan of one generation: `tokens` (the text deltas), `tool` ({name, arguments, fragments})
// or null, `refusal` (boolean: the tokens are a refusal), `finish` (stop|length|tool_calls),
// `promptTokens`. `behaviour` comes from the script (see openai-fake.mjs); `maxTokens` from the
// request; `prefix` is prepended to the text (the WS fake says which turn of the socket it is).
export function planGeneration(body, behaviour, { maxTokens = null, prefix = '' } = {}) {
  const tool = pickTool(body, behaviour);
  let tokens;
  if (tool) {
    tokens = [];
  } else if (typeof behaviour.text === 'string') {
    tokens = behaviour.text.match(/\s*\S+/g) ?? [];
  } else {
    const n = behaviour.tokens ?? 6;
    const echo = lastUserText(body).slice(0, 40).replace(/\s+/g, '_') || '-';
    tokens = [`${prefix}echo:${echo}`];
    for (let i = 1; i < n; i++) tokens.push(` t${i}`);
    tokens = tokens.slice(0, n);
  }
  let finish = tool ? 'tool_calls' : 'stop';
  if (!tool && maxTokens != null && tokens.length > maxTokens) {
    tokens = tokens.slice(0, maxTokens);
    finish = 'length';
  }
  if (behaviour.finish_reason) finish = behaviour.finish_reason;
  return { tokens, tool, refusal: Boolean(behaviour.refusal), finish, promptTokens: promptWords(body) };
}

// A tool call happens when the script says so (`tool_call: {name, arguments}`) or when the
// request forces one (tool_choice "required" or a named function).
function pickTool(body, behaviour) {
  let name = null;
  let args = null;
  if (behaviour.tool_call) {
    name = behaviour.tool_call.name;
    args = behaviour.tool_call.arguments ?? '{}';
  } else if (Array.isArray(body.tools) && body.tools.length > 0) {
    const choice = body.tool_choice;
    const toolName = (t) => t.function?.name ?? t.name;
    if (choice === 'required') name = toolName(body.tools[0]);
    else if (choice && typeof choice === 'object') name = choice.function?.name ?? choice.name;
    if (name) args = JSON.stringify({ input: lastUserText(body) });
  }
  if (!name) return null;
  if (typeof args !== 'string') args = JSON.stringify(args);
  const third = Math.max(1, Math.ceil(args.length / 3));
  const fragments = [];
  for (let i = 0; i < args.length; i += third) fragments.push(args.slice(i, i + third));
  return { name, arguments: args, fragments, callId: randomId('call_', 8) };
}

function tokenLogprobs(token) {
  return { token, logprob: -0.125, bytes: [...Buffer.from(token)], top_logprobs: [] };
}

// ---------------------------------------------------------------- chat completions

export function chatUsage(plan) {
  const completion = plan.tool ? plan.tool.fragments.length : plan.tokens.length;
  return {
    prompt_tokens: plan.promptTokens,
    completion_tokens: completion,
    total_tokens: plan.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0,
                                 rejected_prediction_tokens: 0 },
  };
}

export function chatCompletion(meta, plans, body) {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: plans.map((plan, index) => {
      const text = plan.tokens.join('');
      const message = { role: 'assistant', content: plan.tool || plan.refusal ? null : text,
                        refusal: plan.refusal ? text : null, annotations: [] };
      if (plan.tool) {
        message.tool_calls = [{ id: plan.tool.callId, type: 'function',
                                function: { name: plan.tool.name, arguments: plan.tool.arguments } }];
      }
      const logprobs = body.logprobs ? { content: plan.tokens.map(tokenLogprobs), refusal: null } : null;
      return { index, message, logprobs, finish_reason: plan.finish };
    }),
    usage: sumUsage(plans),
    service_tier: 'default',
    system_fingerprint: 'fp_fake',
  };
}

export function sumUsage(plans) {
  const u = plans.map(chatUsage);
  const total = u[0];
  for (const x of u.slice(1)) {
    total.completion_tokens += x.completion_tokens;
    total.total_tokens += x.completion_tokens;
  }
  return total;
}

// One chat.completion.chunk. `choices` is the array of per-choice {index, delta, finish_reason,
// logprobs}; with include_usage every chunk carries "usage": null except the last, usage-only one.
export function chatChunk(meta, choices, { includeUsage, usage = null }) {
  const chunk = {
    id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model,
    service_tier: 'default', system_fingerprint: 'fp_fake',
    choices: choices.map((c) => ({ index: c.index, delta: c.delta, logprobs: c.logprobs ?? null,
                                   finish_reason: c.finish_reason ?? null })),
  };
  if (includeUsage) chunk.usage = usage;
  return chunk;
}

// The ordered deltas of one choice: role first, then content (or refusal) tokens, or a tool call
// (id/name first, then argument fragments); the finish chunk is added by the caller.
export function chatDeltas(plan, body) {
  const out = [];
  if (plan.tool) {
    out.push({ delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: plan.tool.callId, type: 'function',
                                                                     function: { name: plan.tool.name, arguments: '' } }] } });
    for (const f of plan.tool.fragments) out.push({ delta: { tool_calls: [{ index: 0, function: { arguments: f } }] } });
    return out;
  }
  out.push({ delta: { role: 'assistant', content: '', refusal: null } });
  for (const t of plan.tokens) {
    const delta = plan.refusal ? { refusal: t } : { content: t };
    out.push({ delta, logprobs: body.logprobs ? { content: [tokenLogprobs(t)], refusal: null } : null });
  }
  return out;
}

// ---------------------------------------------------------------- responses

export function responsesUsage(plan) {
  const output = plan.tool ? plan.tool.fragments.length : plan.tokens.length;
  return {
    input_tokens: plan.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: plan.promptTokens + output,
  };
}

// The response object in a given state; `output` is the array of output items so far.
export function responseObject(meta, body, { status, output = [], usage = null, error = null, incomplete = null }) {
  return {
    id: meta.id,
    object: 'response',
    created_at: meta.created,
    status,
    background: false,
    error,
    incomplete_details: incomplete,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: meta.model,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    service_tier: 'default',
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

// The output item a plan produces, finished.
export function outputItem(meta, plan) {
  if (plan.tool) {
    return { id: meta.itemId, type: 'function_call', status: 'completed', arguments: plan.tool.arguments,
             call_id: plan.tool.callId, name: plan.tool.name };
  }
  const text = plan.tokens.join('');
  const part = plan.refusal ? { type: 'refusal', refusal: text }
                            : { type: 'output_text', text, annotations: [], logprobs: [] };
  return { id: meta.itemId, type: 'message', status: 'completed', role: 'assistant', content: [part] };
}

// The whole Responses event sequence for a plan, as [{type, ...}] without sequence numbers
// (the sender numbers what it actually sends). `thin`: response.completed carries output [].
export function responseEvents(meta, body, plan, { thin = false } = {}) {
  const ev = [];
  const item = outputItem(meta, plan);
  ev.push({ type: 'response.created', response: responseObject(meta, body, { status: 'in_progress' }) });
  ev.push({ type: 'response.in_progress', response: responseObject(meta, body, { status: 'in_progress' }) });
  if (plan.tool) {
    ev.push({ type: 'response.output_item.added', output_index: 0,
              item: { ...item, status: 'in_progress', arguments: '' } });
    for (const f of plan.tool.fragments) {
      ev.push({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: 0, delta: f });
    }
    ev.push({ type: 'response.function_call_arguments.done', item_id: item.id, output_index: 0,
              name: plan.tool.name, arguments: plan.tool.arguments });
  } else {
    const text = plan.tokens.join('');
    const kind = plan.refusal ? 'refusal' : 'output_text';
    const empty = plan.refusal ? { type: 'refusal', refusal: '' } : { type: 'output_text', text: '', annotations: [], logprobs: [] };
    ev.push({ type: 'response.output_item.added', output_index: 0,
              item: { id: item.id, type: 'message', status: 'in_progress', role: 'assistant', content: [] } });
    ev.push({ type: 'response.content_part.added', item_id: item.id, output_index: 0, content_index: 0, part: empty });
    for (const t of plan.tokens) {
      const e = { type: `response.${kind}.delta`, item_id: item.id, output_index: 0, content_index: 0, delta: t };
      if (!plan.refusal) e.logprobs = [];
      ev.push(e);
    }
    const done = { type: `response.${kind}.done`, item_id: item.id, output_index: 0, content_index: 0 };
    if (plan.refusal) done.refusal = text; else { done.text = text; done.logprobs = []; }
    ev.push(done);
    ev.push({ type: 'response.content_part.done', item_id: item.id, output_index: 0, content_index: 0, part: item.content[0] });
  }
  ev.push({ type: 'response.output_item.done', output_index: 0, item });
  const usage = responsesUsage(plan);
  if (plan.finish === 'length') {
    ev.push({ type: 'response.incomplete',
              response: responseObject(meta, body, { status: 'incomplete', output: thin ? [] : [item], usage,
                                                     incomplete: { reason: 'max_output_tokens' } }) });
  } else {
    ev.push({ type: 'response.completed',
              response: responseObject(meta, body, { status: 'completed', output: thin ? [] : [item], usage }) });
  }
  return ev;
}

// The terminal event of a response that fails part-way.
export function responseFailed(meta, body, message) {
  return { type: 'response.failed',
           response: responseObject(meta, body, { status: 'failed', error: { code: 'server_error', message } }) };
}

// ---------------------------------------------------------------- embeddings

export function embeddingVector(text, dims) {
  const v = [];
  let seed = crypto.createHash('sha256').update(text).digest();
  while (v.length < dims) {
    for (let i = 0; i + 4 <= seed.length && v.length < dims; i += 4) v.push(seed.readInt32LE(i) / 2 ** 31);
    seed = crypto.createHash('sha256').update(seed).digest();
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => Math.fround(x / norm));
}

export function embeddingsList(body) {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const dims = body.dimensions ?? 8;
  let tokens = 0;
  const data = inputs.map((input, index) => {
    const text = typeof input === 'string' ? input : JSON.stringify(input);
    tokens += Math.max(1, countWords(text));
    const vec = embeddingVector(text, dims);
    const embedding = body.encoding_format === 'base64'
      ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec;
    return { object: 'embedding', index, embedding };
  });
  return { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}
