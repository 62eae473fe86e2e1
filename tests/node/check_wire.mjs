// Validates a worker conversation logged by tests/workers/tee.py against the schemas of the
// `ringcast` dialect (docs/schemas/workers/):
//
//   node tests/node/check_wire.mjs wire.jsonl
//
// Prints one line per message that fails (its position, direction and the reason) and a count
// per schema; exits 1 when any message fails. Entries with different "pid"s (several workers
// logging to one file) are separate conversations. (npm ci in tests/node first, for ajv.)
import fs from 'node:fs';
import { ConversationChecker } from './worker_schemas.mjs';

// [{ line, dir, reason }] for the messages that fail; counts by schema name.
export function checkWire(text) {
  const checkers = new Map();  // pid -> its conversation's checker
  const seen = {};
  const failures = [];
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim()) return;
    const entry = JSON.parse(raw);
    if (!checkers.has(entry.pid)) checkers.set(entry.pid, new ConversationChecker());
    try {
      const name = checkers.get(entry.pid).check(entry.dir, JSON.parse(entry.text));
      seen[name] = (seen[name] ?? 0) + 1;
    } catch (e) {
      failures.push({ line: i + 1, dir: entry.dir, reason: e.message, text: entry.text });
    }
  });
  return { failures, seen };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.length !== 3) {
    console.error('usage: node check_wire.mjs WIRE.jsonl');
    process.exit(2);
  }
  const { failures, seen } = checkWire(fs.readFileSync(process.argv[2], 'utf8'));
  for (const f of failures) console.log(`${process.argv[2]}:${f.line}: ${f.dir}: ${f.reason}\n  ${f.text.slice(0, 300)}`);
  for (const [name, n] of Object.entries(seen).sort()) console.log(`${name}: ${n}`);
  console.log(failures.length ? `${failures.length} message(s) fail` : 'every message validates');
  process.exit(failures.length ? 1 : 0);
}
