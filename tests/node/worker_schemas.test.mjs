// The JSON Schemas of the `ringcast` worker dialect (docs/schemas/workers/) checked with ajv's
// 2020-12 dialect: each compiles in strict mode, each of its `examples` validates, each message
// of its sibling *.invalid.json fails, and index.json (how a message finds its schema) names
// every schema once. The live check of a real conversation is worker_wire.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ConversationChecker, SCHEMA_DIR, loadIndex, loadSchemas, schemaErrors } from './worker_schemas.mjs';

const MESSAGES = [
  'initialize.request', 'initialized.notification', 'generate.request', 'cancel.notification',
  'ping.request', 'embed.request', 'initialize.result', 'generate.delta', 'generate.tool_call',
  'generate.done', 'generate.result', 'ping.result', 'embed.result', 'error.response',
];

test('worker schemas: one 2020-12 schema per message of the dialect, each with examples and invalid examples', () => {
  const schemas = loadSchemas();  // compiles each in strict mode (throws on an unknown keyword)
  assert.deepEqual(Object.keys(schemas).sort(), [...MESSAGES].sort());
  for (const [name, s] of Object.entries(schemas)) {
    assert.equal(s.schema.$schema, 'https://json-schema.org/draft/2020-12/schema', name);
    assert.equal(s.schema.$id, `urn:ringcast:schemas:workers:${name}`, name);
    assert.ok(Array.isArray(s.schema.examples) && s.schema.examples.length > 0, `${name}: examples`);
    assert.ok(Array.isArray(s.invalid) && s.invalid.length > 0, `${name}: ${name}.invalid.json`);
  }
  const files = fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.json')).sort();
  const expected = ['index.json', ...MESSAGES.flatMap((m) => [`${m}.invalid.json`, `${m}.schema.json`])].sort();
  assert.deepEqual(files, expected);
});

test('worker schemas: every example validates', () => {
  for (const [name, s] of Object.entries(loadSchemas())) {
    for (const [i, example] of s.schema.examples.entries())
      assert.ok(s.validate(example), `${name} example ${i}: ${schemaErrors(s.validate)}`);
  }
});

test('worker schemas: every invalid example fails', () => {
  for (const [name, s] of Object.entries(loadSchemas())) {
    for (const { why, message } of s.invalid) {
      assert.equal(typeof why, 'string', name);
      assert.equal(s.validate(message), false, `${name}: "${why}" validates: ${JSON.stringify(message)}`);
    }
  }
});

test('worker schemas: the index routes each example to its own schema', () => {
  const index = loadIndex();
  const named = [];
  for (const side of Object.values(index))
    for (const group of Object.values(side)) named.push(...(typeof group === 'string' ? [group] : Object.values(group)));
  assert.deepEqual([...named].sort(), [...MESSAGES].sort());

  // A conversation made of the examples: each request's examples, then the answer examples.
  const schemas = loadSchemas();
  const checker = new ConversationChecker(schemas, index);
  const to = (name, i = 0) => schemas[name].schema.examples[i];
  const say = (direction, m) => checker.check(direction, m);
  assert.equal(say('to_worker', to('initialize.request')), 'initialize.request');
  assert.equal(say('from_worker', to('initialize.result')), 'initialize.result');
  assert.equal(say('to_worker', to('initialized.notification')), 'initialized.notification');
  assert.equal(say('to_worker', to('generate.request')), 'generate.request');
  assert.equal(say('from_worker', to('generate.delta')), 'generate.delta');
  assert.equal(say('from_worker', to('generate.tool_call')), 'generate.tool_call');
  assert.equal(say('from_worker', to('generate.tool_call', 1)), 'generate.tool_call');
  assert.equal(say('from_worker', to('generate.done')), 'generate.done');
  assert.equal(say('from_worker', to('generate.result')), 'generate.result');
  assert.equal(say('to_worker', to('generate.request', 1)), 'generate.request');
  assert.equal(say('from_worker', to('generate.result', 1)), 'generate.result');
  assert.equal(say('to_worker', to('ping.request')), 'ping.request');
  assert.equal(say('from_worker', to('ping.result')), 'ping.result');
  assert.equal(say('to_worker', to('embed.request')), 'embed.request');
  assert.equal(say('from_worker', to('embed.result')), 'embed.result');
  assert.equal(say('to_worker', to('cancel.notification')), 'cancel.notification');
  assert.equal(say('from_worker', to('error.response')), 'error.response');
  // A response nobody asked for, a method the dialect does not have, a bad message.
  assert.throws(() => say('from_worker', to('ping.result')), /a response to no pending request/);
  assert.throws(() => say('from_worker', { jsonrpc: '2.0', method: 'generate/progress', params: {} }), /unexpected notification generate\/progress/);
  say('to_worker', to('ping.request'));
  assert.throws(() => say('from_worker', { jsonrpc: '2.0', id: 12, result: 'pong' }), /ping.result: \/result must be object/);
});

test('worker schemas: check_wire.mjs reports each failing message of a tee log and exits 1', async () => {
  const { execFileSync } = await import('node:child_process');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-wire-'));
  const file = path.join(dir, 'wire.jsonl');
  const entry = (dir_, m, pid = 100) => JSON.stringify({ dir: dir_, t: 1, pid, text: typeof m === 'string' ? m : JSON.stringify(m) });
  // Two workers logging to one file, their ids overlapping: two conversations.
  const good = [entry('to_worker', { jsonrpc: '2.0', id: 3, method: 'ping', params: {} }),
    entry('to_worker', { jsonrpc: '2.0', id: 3, method: 'ping', params: {} }, 101),
    entry('from_worker', { jsonrpc: '2.0', id: 3, result: {} }, 101),
    entry('from_worker', { jsonrpc: '2.0', id: 3, result: {} })];
  try {
    fs.writeFileSync(file, `${good.join('\n')}\n`);
    const ok = execFileSync(process.execPath, ['check_wire.mjs', file], { encoding: 'utf8' });
    assert.match(ok, /ping\.request: 2\nping\.result: 2\nevery message validates/);
    fs.writeFileSync(file, `${[...good, entry('from_worker', 'not json'),
      entry('from_worker', { jsonrpc: '2.0', method: 'generate/delta', params: { id: 3, choice: 0 } }),
      entry('from_worker', { jsonrpc: '2.0', id: 3, result: {} }, 101)].join('\n')}\n`);
    const bad = (() => {
      try { execFileSync(process.execPath, ['check_wire.mjs', file], { encoding: 'utf8' }); } catch (e) { return e; }
      return null;
    })();
    assert.ok(bad, 'exit status 0 for a bad log');
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /wire\.jsonl:5: from_worker: .*not valid JSON/);
    assert.match(bad.stdout, /wire\.jsonl:6: from_worker: from_worker generate\.delta: \/params must have required property 'text'/);
    assert.match(bad.stdout, /wire\.jsonl:7: from_worker: from_worker: a response to no pending request \(id 3\)/);
    assert.match(bad.stdout, /3 message\(s\) fail/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('worker schemas: the messages shown in docs/workers.md validate, and its example is the tested worker', () => {
  const schemas = loadSchemas();
  const docPath = new URL('../../docs/workers.md', import.meta.url);
  const doc = fs.readFileSync(docPath, 'utf8');
  const blocks = [...doc.matchAll(/<!-- schema: ([\w.]+) -->\n```json\n(.*?)\n```/gs)];
  assert.ok(blocks.length >= 14, `only ${blocks.length} schema-tagged blocks`);
  const shown = new Set();
  for (const [, name, text] of blocks) {
    assert.ok(schemas[name], `docs/workers.md names an unknown schema ${name}`);
    const message = JSON.parse(text);
    assert.ok(schemas[name].validate(message), `docs/workers.md ${name}: ${schemaErrors(schemas[name].validate)}`);
    shown.add(name);
  }
  assert.deepEqual([...shown].sort(), [...MESSAGES].sort(), 'every message of the dialect has an example in the doc');
  const [, file, listing] = doc.match(/<!-- example: ([\w/.]+) -->\n```python\n(.*?)```/s);
  assert.equal(listing, fs.readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'), `docs/workers.md's listing differs from ${file}`);
});
