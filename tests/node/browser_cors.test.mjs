// CORS and API keys for a page on another origin, in a real browser (Debian's chromium,
// headless): the page comes from a small Node http server, ringcast runs with `--cors-origin`
// (that server's origin) and `--api-key`. An allowed origin with the key can use fetch,
// EventSource (?api_key) and WebSocket (?api_key); another origin is refused by the browser
// (no Access-Control-Allow-Origin) or by ringcast (preflight, WebSocket upgrade: 403); a wrong
// key is a 401 the page can read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, watchPage } from './browser.mjs';
import { startPageServer } from './browser_net.mjs';
import { startServer } from './harness.mjs';

const KEY = 'sk-browser-good';

// Starts the two page servers, ringcast and chromium; if one step throws, what was already
// started is stopped before the error propagates (a test fails rather than hangs).
async function setup() {
  const t = {
    allowed: null, other: null, srv: null, browser: null,
    async close() { await t.browser?.close(); await t.srv?.stop(); await t.allowed?.close(); await t.other?.close(); },
  };
  try {
    t.allowed = await startPageServer();
    t.other = await startPageServer();
    t.srv = await startServer(['--cors-origin', t.allowed.origin, '--api-key', KEY]);
    t.browser = await launchBrowser();
  } catch (err) {
    await t.close();
    throw err;
  }
  return t;
}

// In the page: open an EventSource and a WebSocket on ringcast and report how they fare.
// Resolves { es: 'open'|'error', esState, ws: 'open'|'closed', wsCode } once both have settled.
async function openStreams(page, base, key, topic) {
  return page.evaluate(async ({ base, key, topic }) => {
    const q = key === null ? '' : `?api_key=${encodeURIComponent(key)}`;
    window.events = [];
    window.wsEvents = [];
    const es = await new Promise((resolve) => {
      const s = new EventSource(`${base}/v1/topics/${topic}/events${q}`);
      window.es = s;
      s.onopen = () => resolve('open');
      s.onerror = () => { if (s.readyState === EventSource.CLOSED) resolve('error'); };
      setTimeout(() => resolve(`still ${s.readyState} after 15 s`), 15000);
      s.addEventListener('message', (ev) => window.events.push({ id: ev.lastEventId, data: JSON.parse(ev.data) }));
    });
    const ws = await new Promise((resolve) => {
      const s = new WebSocket(`${base.replace('http:', 'ws:')}/ws${q}`);
      window.ws = s;
      s.onopen = () => resolve({ ws: 'open', wsCode: null });
      s.onclose = (ev) => resolve({ ws: 'closed', wsCode: ev.code });
      s.onmessage = (ev) => window.wsEvents.push(JSON.parse(ev.data));
      setTimeout(() => resolve({ ws: `still ${s.readyState} after 15 s`, wsCode: null }), 15000);
    });
    return { es, esState: window.es.readyState, ...ws };
  }, { base, key, topic });
}

test('browser on an allowed origin with a key uses fetch, EventSource and WebSocket across origins', async () => {
  const t = await setup();
  try {
    const page = await t.browser.newPage();
    const watch = watchPage(page);
    await page.goto(t.allowed.origin + '/');
    const base = t.srv.url('').replace(/\/$/, '');
    // fetch with Authorization and a JSON body: a preflighted request.
    const chat = await page.evaluate(async ({ base, key }) => {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-client-extra': '1' },
        body: JSON.stringify({ model: 'ringcast-mock', messages: [{ role: 'user', content: 'hello' }] }),
      });
      return { status: res.status, requestId: res.headers.get('x-request-id'), body: await res.json() };
    }, { base, key: KEY });
    assert.equal(chat.status, 200, JSON.stringify(chat.body));
    assert.ok(chat.body.choices[0].message.content.length > 0);
    assert.ok(chat.requestId, 'x-request-id is exposed to the page');

    const opened = await openStreams(page, base, KEY, 'cors.news');
    assert.deepEqual(opened, { es: 'open', esState: 1, ws: 'open', wsCode: null });
    // Publish once with fetch and once over the WebSocket; the EventSource gets both.
    const published = await page.evaluate(async ({ base, key }) => {
      const res = await fetch(`${base}/v1/topics/cors.news`, {
        method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ via: 'fetch' }),
      });
      window.ws.send(JSON.stringify({ id: 'p1', action: 'publish', payload: { topic: 'cors.news', data: { via: 'ws' } } }));
      return { status: res.status, body: await res.json() };
    }, { base, key: KEY });
    assert.equal(published.status, 200, JSON.stringify(published.body));
    assert.equal(published.body.seq, 1);
    await page.waitForFunction(() => window.events.length === 2 && window.wsEvents.length === 1, null, { timeout: 15000 });
    const { events, wsEvents } = await page.evaluate(() => ({ events: window.events, wsEvents: window.wsEvents }));
    assert.deepEqual(events.map((e) => e.data), [{ via: 'fetch' }, { via: 'ws' }]);
    assert.deepEqual(wsEvents.map((e) => [e.id, e.event, e.data.seq]), [['p1', 'published', 2]]);
    assert.deepEqual(watch.errors, []);  // before closing: chromium may report a closed EventSource as aborted
    await page.evaluate(() => { window.es.close(); window.ws.close(1000); });
  } finally {
    await t.close();
  }
});

test('browser on an origin not in --cors-origin is refused for fetch, EventSource and WebSocket', async () => {
  const t = await setup();
  try {
    const page = await t.browser.newPage();
    const watch = watchPage(page);
    await page.goto(t.other.origin + '/');
    const base = t.srv.url('').replace(/\/$/, '');
    const fetched = await page.evaluate(async ({ base, key }) => {
      const out = {};
      for (const [name, init] of Object.entries({
        simple: { headers: { 'x-api-key': key } },  // preflighted too (x-api-key is not a safelisted header)
        get: {},                                     // a simple GET: ringcast answers, the browser hides it
      })) {
        try { out[name] = `status ${(await fetch(`${base}/v1/models`, init)).status}`; } catch (e) { out[name] = e.name; }
      }
      return out;
    }, { base, key: KEY });
    assert.deepEqual(fetched, { simple: 'TypeError', get: 'TypeError' });
    const opened = await openStreams(page, base, KEY, 'cors.news');
    assert.equal(opened.es, 'error');
    assert.equal(opened.esState, 2);  // CLOSED: a CORS failure is not retried
    assert.deepEqual([opened.ws, opened.wsCode], ['closed', 1006]);
    // Chromium says why; nothing else went wrong on the page.
    const cors = watch.errors.filter((e) => /CORS policy/.test(e));
    assert.ok(cors.length >= 3, JSON.stringify(watch.errors));
    assert.ok(watch.errors.some((e) => /WebSocket connection to .* failed/.test(e)), JSON.stringify(watch.errors));
    assert.deepEqual(watch.errors.filter((e) => e.startsWith('pageerror')), []);
    // ringcast itself refused what it can refuse: the preflight and the upgrade (403s counted).
    const metrics = await (await fetch(t.srv.url('/metrics'))).text();
    const origin = [...metrics.matchAll(/^ringcast_admission_rejected_total\{[^}]*reason="origin"[^}]*\} (\d+)/gm)]
      .reduce((sum, m) => sum + Number(m[1]), 0);
    assert.ok(origin >= 2, metrics.split('\n').filter((l) => l.includes('reason="origin"')).join('\n'));
  } finally {
    await t.close();
  }
});

test('browser on an allowed origin with a wrong or no key gets a 401 it can read, and no stream', async () => {
  const t = await setup();
  try {
    const page = await t.browser.newPage();
    const watch = watchPage(page);
    await page.goto(t.allowed.origin + '/');
    const base = t.srv.url('').replace(/\/$/, '');
    const answers = await page.evaluate(async ({ base }) => {
      const out = [];
      for (const headers of [{ authorization: 'Bearer sk-wrong' }, { 'x-api-key': 'sk-wrong' }, {}]) {
        const res = await fetch(`${base}/v1/chat/completions`, {
          method: 'POST', headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'ringcast-mock', messages: [{ role: 'user', content: 'hello' }] }),
        });
        const body = await res.json();
        out.push([res.status, body.error.code, /API key/.test(body.error.message), res.headers.get('content-type')]);
      }
      return out;
    }, { base });
    // No key: OpenAI's answer, code null and a message saying to provide one.
    assert.deepEqual(answers, [[401, 'invalid_api_key', true, 'application/json'],
                               [401, 'invalid_api_key', true, 'application/json'],
                               [401, null, true, 'application/json']]);
    const opened = await openStreams(page, base, 'sk-wrong', 'cors.news');
    assert.deepEqual([opened.es, opened.esState], ['error', 2]);  // a 401 fails the EventSource for good
    assert.deepEqual([opened.ws, opened.wsCode], ['closed', 1006]);
    const none = await openStreams(page, base, null, 'cors.news');
    assert.deepEqual([none.es, none.ws], ['error', 'closed']);
    // Chromium reports each 401, and may report the EventSource it gave up on as aborted.
    for (const e of watch.errors) {
      assert.match(e, /401|WebSocket connection to .* failed|\/v1\/topics\/cors\.news\/events.*net::ERR_ABORTED/, JSON.stringify(watch.errors));
    }
  } finally {
    await t.close();
  }
});

test('preflight: the allowed origin gets the route methods and the headers it asked for, another origin 403', async () => {
  const t = await setup();
  try {
    const ask = (origin, path, headers) => fetch(t.srv.url(path), {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers },
    });
    const ok = await ask(t.allowed.origin, '/v1/chat/completions', 'authorization, content-type, x-stainless-os');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), t.allowed.origin);
    assert.match(ok.headers.get('access-control-allow-methods'), /\bPOST\b/);
    assert.equal(ok.headers.get('access-control-allow-headers'), 'authorization, content-type, x-stainless-os');
    const refused = await ask(t.other.origin, '/v1/chat/completions', 'authorization');
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    assert.equal((await refused.json()).error.code, 'origin_not_allowed');

    // In the browser: a request with a header nobody lists beforehand passes its preflight.
    const page = await t.browser.newPage();
    const watch = watchPage(page);
    await page.goto(t.allowed.origin + '/');
    const status = await page.evaluate(async ({ url, key }) => (await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-stainless-os': 'Linux' },
      body: JSON.stringify({ input: 'hello', model: 'ringcast-mock' }),
    })).status, { url: t.srv.url('/v1/embeddings'), key: KEY });
    assert.equal(status, 200);
    assert.deepEqual(watch.errors, []);
  } finally {
    await t.close();
  }
});
