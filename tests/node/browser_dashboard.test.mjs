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
  const srv = await startServer(['--dashboard'], { shards: 2 });
  const browser = await launchBrowser();
  const sockets = [];
  try {
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
    await browser.close();
    await srv.stop();
  }
});

test('dashboard behind API keys works with the admin key as Basic credentials', async () => {
  const srv = await startServer(['--dashboard', '--api-key', 'sk-user-1', '--admin-key', 'sk-admin-1']);
  const browser = await launchBrowser();
  try {
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
    await browser.close();
    await srv.stop();
  }
});

test('topic viewer shows published events and resumes without gap or duplicate', async () => {
  const srv = await startServer(['--dashboard'], { shards: 2 });
  const browser = await launchBrowser();
  try {
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

    // A bad id is refused by ringcast and the page says why.
    await page.fill('#topic-since', 'abc');
    await page.click('#topic-watch');
    await until(async () => (await text(page, '#topic-state')).startsWith('400: '), 10000, 'the 400');
    const expected = (e) => aborted('/v1/topics/news.demo/events')(e) ||
                            (e.startsWith('console: ') && e.includes('status of 400'));
    assert.deepEqual(watch.errors.filter((e) => !expected(e)), []);
  } finally {
    await browser.close();
    await srv.stop();
  }
});

test('chat playground streams a reply from the mock engine and stops it', async () => {
  const srv = await startServer(['--dashboard', '--mock-tokens-per-s', '10',
                                 '--model', 'ringcast-mock', '--model', 'second-mock'], { shards: 2 });
  const browser = await launchBrowser();
  try {
    const { page, watch } = await openPage(browser, srv);
    await until(async () => (await page.locator('#chat-model option').count()) === 2, 10000, 'the models');
    assert.deepEqual(await page.locator('#chat-model option').allTextContents(), ['ringcast-mock', 'second-mock']);
    await page.selectOption('#chat-model', 'second-mock');

    // A reply of 8 tokens at 10 tokens/s: seen growing, then whole.
    const reply = () => text(page, '#chat-log [data-role="assistant"]:last-child .text');
    await page.fill('#chat-max-tokens', '8');
    await page.fill('#chat-prompt', 'Hello there');
    await page.click('#chat-send');
    await page.waitForFunction(() => document.querySelector('#chat-state').textContent === 'streaming' &&
                                     document.querySelector('#chat-log [data-role="assistant"] .text').textContent,
                               null, { timeout: 15000, polling: 10 });
    const partial = await reply();
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
    const expected = (e) => aborted('/v1/chat/completions')(e) || (e.startsWith('console: ') && e.includes('status of 400'));
    assert.deepEqual(watch.errors.filter((e) => !expected(e)), []);
  } finally {
    await browser.close();
    await srv.stop();
  }
});
