// The JSON Schemas of the `ringcast` worker dialect (docs/schemas/workers/, layout in its
// README.md), compiled with ajv's 2020-12 dialect, and a checker that picks the schema of each
// message of a conversation between ringcast and a worker: requests and notifications by method,
// responses by the method of the request they answer (ids are tracked per direction).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

export const SCHEMA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/schemas/workers');

const readJson = (file) => JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, file), 'utf8'));

// { name: { schema, validate, invalid: [{ why, message }] } } for every *.schema.json.
export function loadSchemas() {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  const out = {};
  for (const file of fs.readdirSync(SCHEMA_DIR).sort()) {
    if (!file.endsWith('.schema.json')) continue;
    const name = file.slice(0, -'.schema.json'.length);
    const schema = readJson(file);
    const invalidFile = `${name}.invalid.json`;
    out[name] = {
      schema,
      validate: ajv.compile(schema),
      invalid: fs.existsSync(path.join(SCHEMA_DIR, invalidFile)) ? readJson(invalidFile) : null,
    };
  }
  return out;
}

export const loadIndex = () => readJson('index.json');

const describe = (validate) => (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');

// Checks a conversation message by message. check(direction, message) with direction
// 'to_worker' or 'from_worker'; returns the schema name used; throws with the reason when the
// message matches no schema or fails its schema.
export class ConversationChecker {
  constructor(schemas = loadSchemas(), index = loadIndex()) {
    this.schemas = schemas;
    this.index = index;
    this.pending = { to_worker: new Map(), from_worker: new Map() };  // id -> method, by request direction
    this.seen = new Map();  // schema name -> count
  }

  pick(direction, m) {
    const d = this.index[direction];
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error('not a JSON object');
    if (typeof m.method === 'string') {
      const group = 'id' in m ? d.requests : d.notifications;
      const name = group?.[m.method];
      if (!name) throw new Error(`${direction}: unexpected ${'id' in m ? 'request' : 'notification'} ${m.method}`);
      if ('id' in m) this.pending[direction].set(m.id, m.method);
      return name;
    }
    // A response answers a request that went the other way.
    const other = direction === 'to_worker' ? 'from_worker' : 'to_worker';
    const method = this.pending[other].get(m.id);
    if ('error' in m) {
      if (m.id !== null) this.pending[other].delete(m.id);
      if (!d.error) throw new Error(`${direction}: unexpected error response`);
      return d.error;
    }
    if (method === undefined) throw new Error(`${direction}: a response to no pending request (id ${JSON.stringify(m.id)})`);
    this.pending[other].delete(m.id);
    const name = d.results?.[method];
    if (!name) throw new Error(`${direction}: unexpected result of ${method}`);
    return name;
  }

  check(direction, message) {
    const name = this.pick(direction, message);
    const s = this.schemas[name];
    if (!s.validate(message)) throw new Error(`${direction} ${name}: ${describe(s.validate)}`);
    this.seen.set(name, (this.seen.get(name) ?? 0) + 1);
    return name;
  }
}

export { describe as schemaErrors };
