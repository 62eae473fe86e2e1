// The dashboard (GET /dashboard, server/assets/dashboard.html) in Debian's chromium: it loads
// with no console errors (open, and behind an admin key given as HTTP Basic credentials), its
// numbers follow the load from the ops stream, the topic viewer shows published events and
// resumes without gap or duplicate, the chat playground streams a reply and stops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { launchBrowser, watchPage } from './browser.mjs';
import { startServer, postJson, sleep } from './harness.mjs';

// Polls the async `fn` until it returns a truthy value (returned); fails after `timeoutMs`.
async function until(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const text = (page, selector) => page.locator(selector).first().textContent();
const number = async (page, selector) => Number((await text(page, selector)).replace(/,/g, ''));
const totals = (page, key) => number(page, `#totals [data-k="${key}"]`);

// The errors a test caused on purpose: fetches the page aborted (Stop, a new watch).
const aborted = (route) => (e) => e.startsWith('requestfailed: ') && e.includes(route) && e.endsWith('net::ERR_ABORTED');

async function openPage(browser, srv, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const watch = watchPage(page);
  const res = await page.goto(srv.url('/dashboard?interval_ms=250'));
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /^text\/html/);
  await until(async () => (await text(page, '#ops-state')) === 'live', 15000, 'the ops stream');
  return { page, watch };
}

async function openSocket(port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return ws;
}

test('dashboard loads with no console errors and its numbers follow the load', async () => {
  const sockets = [];
  let srv, browser;
  try {
    srv = await startServer(['--dashboard'], { shards: 2 });
    browser = await launchBrowser();
    const { page, watch } = await openPage(browser, srv);
    assert.equal(await page.locator('#shards tbody tr').count(), 2);
    assert.match(await text(page, '#node'), /\S/);
    assert.equal(await totals(page, 'connections.ws'), 0);
    // The page's own requests (itself, the model list) are answered by now; its streams are not.
    await until(async () => (await totals(page, 'requests_per_s')) === 0, 10000, 'no requests at first');

    // Load: three WebSockets subscribed to a topic, requests, publications delivered to them.
    for (let i = 0; i < 3; i++) {
      const ws = await openSocket(srv.port);
      ws.send(JSON.stringify({ id: `s${i}`, action: 'subscribe', payload: { topic: 'load' } }));
      sockets.push(ws);
    }
    let moved = false;
    const load = (async () => {
      for (let i = 0; !moved && i < 2000; i++) {
        await Promise.all([fetch(srv.url('/v1/models')).then((r) => r.arrayBuffer()),
                           postJson(srv.url('/v1/topics/load'), { i })]);
      }
    })();
    try {
      await until(async () => (await totals(page, 'connections.ws')) === 3, 15000, '3 WebSockets on the page');
      await until(async () => (await totals(page, 'requests_per_s')) > 0, 15000, 'requests/s above 0');
      await until(async () => (await totals(page, 'deliveries_per_s')) > 0, 15000, 'deliveries/s above 0');
      await until(async () => (await totals(page, 'topic_subscribers')) === 3, 15000, '3 topic subscribers');
      assert.ok(await number(page, '#card-requests .value') > 0);
      const perShard = await page.locator('#shards tbody [data-k="requests_per_s"]').allTextContents();
      assert.equal(perShard.length, 2);
    } finally {
      moved = true;
      await load;
    }
    // And back down once the load stops.
    for (const ws of sockets.splice(0)) ws.close();
    await until(async () => (await totals(page, 'connections.ws')) === 0, 15000, 'the WebSockets gone');
    await until(async () => (await totals(page, 'requests_per_s')) === 0, 15000, 'requests/s back to 0');
    await until(async () => (await totals(page, 'deliveries_per_s')) === 0, 15000, 'deliveries/s back to 0');
    assert.deepEqual(watch.errors, []);
  } finally {
    for (const ws of sockets) ws.close();
    await browser?.close();
    await srv?.stop();
  }
});

test('dashboard behind API keys works with the admin key as Basic credentials', async () => {
  let srv, browser;
  try {
    srv = await startServer(['--dashboard', '--api-key', 'sk-user-1', '--admin-key', 'sk-admin-1']);
    browser = await launchBrowser();
    // No credentials: ringcast asks for Basic ones (a headless browser has none to give); a key
    // that is not an admin key: forbidden.
    const challenge = await fetch(srv.url('/dashboard'));
    assert.equal(challenge.status, 401);
    assert.match(challenge.headers.get('www-authenticate'), /^Basic realm="ringcast dashboard"/);
    const anonymous = await (await browser.newContext()).newPage();
    await assert.rejects(anonymous.goto(srv.url('/dashboard')), /ERR_INVALID_AUTH_CREDENTIALS/);
    const user = await (await browser.newContext({ httpCredentials: { username: 'me', password: 'sk-user-1' } })).newPage();
    assert.equal((await user.goto(srv.url('/dashboard'))).status(), 403);

    // The admin key: the page and every request it makes (ops stream, models, topics, chat) pass.
    const { page, watch } = await openPage(browser, srv, { httpCredentials: { username: 'ops', password: 'sk-admin-1' } });
    // Those refusals, by reason, on the page.
    const refused = (reason) => number(page, `#refusals tr[data-reason="${reason}"] td:last-child`);
    await until(async () => (await refused('auth')) > 0 && (await refused('permission')) > 0, 10000,
                'the auth and permission refusals');
    assert.equal(await refused('rate'), 0);
    await until(async () => (await page.locator('#chat-model option').count()) > 0, 10000, 'the model list');
    await page.fill('#topic-name', 'ops.check');
    await page.click('#topic-watch');
    await until(async () => (await text(page, '#topic-state')) === 'watching', 10000, 'the topic stream');
    await page.fill('#topic-data', '{"from":"page"}');
    await page.click('#topic-publish');
    await until(async () => (await page.locator('#topic-events tbody tr').count()) === 1, 10000, 'the event');
    assert.equal(await text(page, '#topic-events tbody td.data'), '{"from":"page"}');
    await page.fill('#chat-max-tokens', '3');
    await page.fill('#chat-prompt', 'Hello');
    await page.click('#chat-send');
    await until(async () => (await text(page, '#chat-state')).startsWith('done'), 15000, 'the chat reply');
    assert.deepEqual(watch.errors, []);
  } finally {
    await browser?.close();
    await srv?.stop();
  }
});

test('topic viewer shows published events and resumes without gap or duplicate', async () => {
  let srv, browser;
  try {
    srv = await startServer(['--dashboard'], { shards: 2 });
    browser = await launchBrowser();
    const { page, watch } = await openPage(browser, srv);
    const rows = () => page.locator('#topic-events tbody tr');
    const seen = async () => (await rows().evaluateAll((trs) => trs.map((tr) => ({
      id: tr.dataset.id, event: tr.dataset.event, data: JSON.parse(tr.querySelector('td.data').textContent) }))));

    await page.fill('#topic-name', 'bad topic!');
    await page.click('#topic-watch');
    assert.match(await text(page, '#topic-state'), /a topic is 1 to 128/);

    await page.fill('#topic-name', 'news.demo');
    await page.click('#topic-watch');
    await until(async () => (await text(page, '#topic-state')) === 'watching', 10000, 'watching');
    for (let n = 1; n <= 3; n++) await postJson(srv.url('/v1/topics/news.demo'), { n });
    await until(async () => (await rows().count()) === 3, 10000, '3 events');
    // The viewer's stream in the SSE column (all and per shard); the HTTP column per shard.
    const column = (k) => page.locator(`#shards tbody [data-k="${k}"]`).allTextContents();
    await until(async () => (await totals(page, 'connections.sse')) >= 1 &&
                            (await column('connections.sse')).reduce((a, v) => a + Number(v), 0) >= 1,
                15000, 'the SSE stream in the table');
    assert.equal((await column('connections.http')).length, 2);
    assert.ok((await column('connections.http')).every((v) => /^[0-9]+$/.test(v)));

    await page.click('#topic-stop');
    await until(async () => (await text(page, '#topic-state')) === 'stopped', 10000, 'stopped');
    for (let n = 4; n <= 5; n++) await postJson(srv.url('/v1/topics/news.demo'), { n });
    await page.click('#topic-resume');  // Last-Event-ID: the last id seen
    await until(async () => (await rows().count()) === 5, 10000, '5 events after the resume');
    let events = await seen();
    assert.deepEqual(events.map((e) => e.data.n), [1, 2, 3, 4, 5]);
    assert.deepEqual(events.map((e) => e.event), Array(5).fill('message'));
    assert.equal(new Set(events.map((e) => e.id.split('-')[0])).size, 1);
    assert.deepEqual(events.map((e) => Number(e.id.split('-')[1])), [1, 2, 3, 4, 5]);
    assert.equal(await text(page, '#topic-last'), events[4].id);
    assert.equal(await text(page, '#topic-count'), '5');

    // From an id typed in (?since=): the history after it, then live.
    await page.click('#topic-clear');
    await page.fill('#topic-since', events[1].id);
    await page.click('#topic-watch');
    await until(async () => (await rows().count()) === 3, 10000, 'the history after event 2');
    await page.fill('#topic-data', '{"n":6}');
    await page.click('#topic-publish');
    await until(async () => (await rows().count()) === 4, 10000, 'the event published from the page');
    events = await seen();
    assert.deepEqual(events.map((e) => e.data.n), [3, 4, 5, 6]);
    await until(async () => (await text(page, '#topic-published')) === `published ${events[3].id}`, 10000,
                'the publication acknowledged');

    // An invalid name while a watch runs: the watch stops and the message stays.
    await page.fill('#topic-name', 'bad topic!');
    await page.click('#topic-watch');
    await sleep(500);  // the aborted loop ends meanwhile
    assert.match(await text(page, '#topic-state'), /a topic is 1 to 128/);
    assert.equal(await page.locator('#topic-stop').isDisabled(), true);

    // A large event: the row shows a bounded preview and its size.
    await page.fill('#topic-name', 'news.demo');
    await page.fill('#topic-since', '');
    await page.click('#topic-clear');
    await page.click('#topic-watch');
    await until(async () => (await text(page, '#topic-state')) === 'watching', 10000, 'watching again');
    const big = { s: 'x'.repeat(100000) };
    await postJson(srv.url('/v1/topics/news.demo'), big);
    await until(async () => (await rows().count()) === 1, 10000, 'the large event');
    const shown = await text(page, '#topic-events tbody td.data');
    assert.ok(shown.length < 5000, `${shown.length} characters shown`);
    assert.ok(shown.endsWith(` … (${JSON.stringify(big).length} bytes)`), shown.slice(-40));

    // A bad id is refused by ringcast and the page says why.
    await page.fill('#topic-since', 'abc');
    await page.click('#topic-watch');
    await until(async () => (await text(page, '#topic-state')).startsWith('400: '), 10000, 'the 400');
    const expected = (e) => aborted('/v1/topics/news.demo/events')(e) ||
                            (e.startsWith('console: ') && e.includes('status of 400'));
    assert.deepEqual(watch.errors.filter((e) => !expected(e)), []);
  } finally {
    await browser?.close();
    await srv?.stop();
  }
});

test('chat playground streams a reply from the mock engine and stops it', async () => {
  let srv, browser;
  try {
    srv = await startServer(['--dashboard', '--mock-tokens-per-s', '5',
                             '--model', 'ringcast-mock', '--model', 'second-mock'], { shards: 2 });
    browser = await launchBrowser();
    const { page, watch } = await openPage(browser, srv);
    await until(async () => (await page.locator('#chat-model option').count()) === 2, 10000, 'the models');
    assert.deepEqual(await page.locator('#chat-model option').allTextContents(), ['ringcast-mock', 'second-mock']);
    await page.selectOption('#chat-model', 'second-mock');

    // A reply of 8 tokens at 5 tokens/s: seen growing, then whole.
    const reply = () => text(page, '#chat-log [data-role="assistant"]:last-child .text');
    await page.fill('#chat-max-tokens', '8');
    await page.fill('#chat-prompt', 'Hello there');
    await page.click('#chat-send');
    // The partial text is read by the predicate itself: no round trip in between.
    const partial = await (await page.waitForFunction(
      () => document.querySelector('#chat-state').textContent === 'streaming' &&
            document.querySelector('#chat-log [data-role="assistant"] .text').textContent,
      null, { timeout: 15000, polling: 10 })).jsonValue();
    await until(async () => (await text(page, '#chat-state')).startsWith('done (length)'), 15000, 'the whole reply');
    const whole = await reply();
    const direct = await postJson(srv.url('/v1/chat/completions'), {
      model: 'second-mock', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 8 });
    assert.equal(whole, direct.json.choices[0].message.content);
    assert.ok(partial.length < whole.length && whole.startsWith(partial), `${partial} / ${whole}`);
    assert.match(await text(page, '#chat-state'), /8 tokens$/);

    // A long reply, stopped: the text stops growing and the generation ends on the server.
    await page.fill('#chat-max-tokens', '300');
    await page.fill('#chat-prompt', 'Tell me more');
    await page.click('#chat-send');
    await until(async () => (await text(page, '#chat-state')) === 'streaming', 15000, 'the long reply');
    await until(async () => (await totals(page, 'engine_running')) === 1, 15000, 'the generation on the page');
    // The first tokens of the interval on the cards (a value per interval: polled).
    await until(async () => (await text(page, '#card-ttft-p50 .value')) !== '–' &&
                            (await text(page, '#card-ttft-p99 .value')) !== '–', 15000, 'first-token p50/p99');
    await page.click('#chat-stop');
    await until(async () => (await text(page, '#chat-state')) === 'stopped', 10000, 'stopped');
    const stopped = await reply();
    await until(async () => (await totals(page, 'engine_running')) === 0, 15000, 'the generation ended');
    assert.equal(await reply(), stopped);
    assert.ok(stopped.length > 0);

    // A request ringcast refuses: its message on the page.
    await page.fill('#chat-max-tokens', '100000000');
    await page.fill('#chat-prompt', 'Too long');
    await page.click('#chat-send');
    await until(async () => (await text(page, '#chat-state')).startsWith('400: '), 10000, 'the 400');
    assert.match(await text(page, '#chat-state'), /max_tokens/);

    // New chat while a reply streams: the new conversation carries neither the old reply nor the
    // refused turn above, and the aborted request does not overwrite the state.
    const bodies = [];
    page.on('request', (req) => { if (req.url().endsWith('/v1/chat/completions')) bodies.push(req.postDataJSON()); });
    await page.fill('#chat-max-tokens', '300');
    await page.fill('#chat-prompt', 'Tell me more');
    await page.click('#chat-send');
    await until(async () => (await reply()).length > 0, 15000, 'a streaming reply');
    assert.deepEqual(bodies.at(-1).messages.map((m) => m.content),
                     ['Hello there', whole, 'Tell me more', stopped, 'Tell me more']);
    await page.click('#chat-clear');
    await until(async () => (await totals(page, 'engine_running')) === 0, 15000, 'the old generation ended');
    await sleep(300);
    assert.equal(await text(page, '#chat-state'), 'idle');
    await page.fill('#chat-max-tokens', '2');
    await page.fill('#chat-prompt', 'Hi');
    await page.click('#chat-send');
    await until(async () => (await text(page, '#chat-state')).startsWith('done'), 15000, 'the new reply');
    assert.deepEqual(bodies.at(-1).messages, [{ role: 'user', content: 'Hi' }]);
    const expected = (e) => aborted('/v1/chat/completions')(e) || (e.startsWith('console: ') && e.includes('status of 400'));
    assert.deepEqual(watch.errors.filter((e) => !expected(e)), []);
  } finally {
    await browser?.close();
    await srv?.stop();
  }
});

test('topic viewer reconnects at the pace the server asks for', async () => {
  let srv, browser;
  try {
    srv = await startServer(['--dashboard']);
    browser = await launchBrowser();
    const { page, watch } = await openPage(browser, srv);
    // The topic stream as a server that is going away would answer it, per phase.
    const answers = {
      empty: { status: 200, contentType: 'text/event-stream', body: '' },  // opens, ends at once
      retry: { status: 200, contentType: 'text/event-stream', body: 'retry: 5000\n\n' },
      busy: { status: 503, contentType: 'application/json', headers: { 'retry-after': '5', 'retry-after-ms': '5000' },
              body: '{"error":{"message":"draining","type":"server_error","code":"draining"}}' },
    };
    let phase = 'empty';
    const opened = { empty: [], retry: [], busy: [] };
    await page.route('**/v1/topics/paced/events', (route) => {
      opened[phase].push(Date.now());
      return route.fulfill(answers[phase]);
    });
    // Requests within 3 s of the first one of a phase (a slow machine only makes fewer).
    const watchFor3s = async (name) => {
      phase = name;
      await page.fill('#topic-name', 'paced');
      await page.click('#topic-watch');
      await until(async () => opened[name].length > 0, 10000, `the first request (${name})`);
      await sleep(3000);
      return opened[name].filter((t) => t - opened[name][0] < 3000).length;
    };
    // A stream that ends without an event: 500 ms, 1 s, 2 s … (a fixed 500 ms would make 6).
    assert.ok(await watchFor3s('empty') <= 4, JSON.stringify(opened.empty));
    // `retry: 5000`: the next attempt after 5 s.
    assert.equal(await watchFor3s('retry'), 1, JSON.stringify(opened.retry));
    // 503 with Retry-After: 5 s.
    assert.equal(await watchFor3s('busy'), 1, JSON.stringify(opened.busy));
    assert.match(await text(page, '#topic-state'), /^503: /);
    await page.click('#topic-stop');
    const expected = (e) => aborted('/v1/topics/paced/events')(e) || (e.startsWith('console: ') && e.includes('status of 503'));
    assert.deepEqual(watch.errors.filter((e) => !expected(e)), []);
  } finally {
    await browser?.close();
    await srv?.stop();
  }
});
