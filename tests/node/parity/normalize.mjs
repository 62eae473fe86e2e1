// The parity harness's normalizer and differ. Pure functions, no I/O.
//
// normalizer(): what differs from run to run and from engine to engine without being a
// difference a client could see becomes a placeholder, and nothing else changes:
// * ids (chatcmpl-…, resp_…, msg_…, fc_…, call_…, rs_…) become <kind#n>, numbered per kind by
//   first appearance in the transcript, so "the same id" and "another id" are still told apart
//   (a response.completed whose id is not the response.created's is a difference);
// * clocks (`created`, `created_at`, `completed_at`) become 0 when they are numbers;
// * object keys are sorted, so the files read the same whoever serialized the JSON (JSON object
//   members are unordered; arrays keep their order).
// canonical() is the text written to a golden file and compared; diff() explains a difference.

const ID = /\b(chatcmpl-|resp_|msg_|fc_|call_|rs_)[A-Za-z0-9_-]+/g;
const CLOCKS = new Set(['created', 'created_at', 'completed_at']);

export function normalizer() {
  const seen = new Map();
  const counts = new Map();
  const id = (s) => s.replace(ID, (m, kind) => {
    if (!seen.has(m)) {
      const n = (counts.get(kind) ?? 0) + 1;
      counts.set(kind, n);
      seen.set(m, `<${kind}${n}>`);
    }
    return seen.get(m);
  });
  const walk = (v) => {
    if (typeof v === 'string') return id(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out = {};
      for (const k of Object.keys(v).sort()) out[k] = CLOCKS.has(k) && typeof v[k] === 'number' ? 0 : walk(v[k]);
      return out;
    }
    return v;
  };
  return walk;
}

// A transcript file's text: two-space indentation, one trailing newline.
export function canonical(transcript) {
  return `${JSON.stringify(transcript, null, 2)}\n`;
}

// The JSONPath-like location of the first difference between two JSON values, or null.
export function firstDifference(want, got, path = '$') {
  if (Object.is(want, got)) return null;
  const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(want) !== kind(got)) return path;
  if (kind(want) === 'array') {
    for (let i = 0; i < Math.min(want.length, got.length); i++) {
      const d = firstDifference(want[i], got[i], `${path}[${i}]`);
      if (d) return d;
    }
    return want.length === got.length ? null : `${path}[${Math.min(want.length, got.length)}]`;
  }
  if (kind(want) === 'object') {
    const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])];
    for (const k of keys) {
      const at = /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
      if (!(k in want) || !(k in got)) return at;
      const d = firstDifference(want[k], got[k], at);
      if (d) return d;
    }
    return null;
  }
  return path;
}

// A unified diff (---/+++ headers, @@ hunks with `context` lines around changes) of two texts,
// line by line (longest common subsequence); "" when they are equal.
export function unifiedDiff(a, b, { from = 'golden', to = 'got', context = 3 } = {}) {
  if (a === b) return '';
  const x = a.split('\n');
  const y = b.split('\n');
  // Trim the common head and tail: the table is then small even for long transcripts.
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail);
  const ys = y.slice(head, y.length - tail);
  const w = ys.length + 1;
  const lcs = new Int32Array((xs.length + 1) * w);
  for (let i = xs.length - 1; i >= 0; i--) {
    for (let j = ys.length - 1; j >= 0; j--) {
      lcs[i * w + j] = xs[i] === ys[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    }
  }
  const ops = [];   // [' ' | '-' | '+', line, index in a, index in b]
  for (let k = 0; k < head; k++) ops.push([' ', x[k], k, k]);
  let i = 0;
  let j = 0;
  while (i < xs.length || j < ys.length) {
    if (i < xs.length && j < ys.length && xs[i] === ys[j]) { ops.push([' ', xs[i], head + i, head + j]); i++; j++; }
    else if (i < xs.length && (j === ys.length || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) { ops.push(['-', xs[i], head + i, head + j]); i++; }
    else { ops.push(['+', ys[j], head + i, head + j]); j++; }
  }
  for (let k = 0; k < tail; k++) ops.push([' ', x[x.length - tail + k], x.length - tail + k, y.length - tail + k]);
  const out = [`--- ${from}`, `+++ ${to}`];
  for (let k = 0; k < ops.length;) {
    if (ops[k][0] === ' ') { k++; continue; }
    let start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while the next change is within 2 × context lines.
    for (;;) {
      while (end < ops.length && ops[end][0] !== ' ') end++;
      let next = end;
      while (next < ops.length && ops[next][0] === ' ') next++;
      if (next < ops.length && next - end <= 2 * context) { end = next; continue; }
      end = Math.min(ops.length, end + context);
      break;
    }
    const hunk = ops.slice(start, end);
    const aLen = hunk.filter((o) => o[0] !== '+').length;
    const bLen = hunk.filter((o) => o[0] !== '-').length;
    out.push(`@@ -${hunk[0][2] + 1},${aLen} +${hunk[0][3] + 1},${bLen} @@`);
    for (const [op, line] of hunk) out.push(`${op}${line}`);
    k = end;
  }
  return `${out.join('\n')}\n`;
}
