// Small client-side readers the upstream tests share: an SSE reader over a fetch Response
// (frames as {event, data, id}), and a WebSocket event collector. Both bounded by timeouts.

// Reads a whole SSE body into frames; comment lines (": ping") are skipped.
export async function readSse(res, { timeoutMs = 20000 } = {}) {
  const text = await Promise.race([
    res.text(),
    new Promise((_, reject) => setTimeout(() => reject(new Error('SSE body did not end')), timeoutMs)),
  ]);
  return parseSse(text);
}

export function parseSse(text) {
  const frames = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const f = { event: null, data: null, id: null };
    let any = false;
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') f.data = f.data === null ? value : `${f.data}\n${value}`;
      else if (field === 'event') f.event = value;
      else if (field === 'id') f.id = value;
      any = true;
    }
    if (any) frames.push(f);
  }
  return frames;
}

// Collects a WebSocket's JSON text frames. until(type) resolves with the events received since
// the previous until() up to and including the next one of that type.
export function wsEvents(ws, { timeoutMs = 20000 } = {}) {
  const all = [];
  const raw = [];
  let cursor = 0;
  let waiter = null;
  const check = () => {
    if (!waiter) return;
    const i = all.findIndex((e, k) => k >= cursor && e.type === waiter.type);
    if (i < 0) return;
    const out = all.slice(cursor, i + 1);
    cursor = i + 1;
    const w = waiter;
    waiter = null;
    clearTimeout(w.timer);
    w.resolve(out);
  };
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? '' : data.toString();
    raw.push(isBinary ? `<binary ${data.length}>` : text);
    try { all.push(JSON.parse(text)); } catch { /* kept in raw only */ }
    check();
  });
  const opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  closed.then(() => { if (waiter) { clearTimeout(waiter.timer); waiter.reject(new Error(`socket closed before ${waiter.type}`)); waiter = null; } });
  return {
    all, raw, opened, closed,
    until(type) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { waiter = null; reject(new Error(`no ${type} within ${timeoutMs} ms`)); }, timeoutMs);
        waiter = { type, resolve, reject, timer };
        check();
      });
    },
  };
}
