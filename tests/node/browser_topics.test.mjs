// Topics in a real browser (Debian's chromium, headless): the browser's own EventSource
// reconnects after its stream is cut and resumes with Last-Event-ID; the browser's own WebSocket
// reassembles the fragmented topic messages ringcast sends. The page is served by ringcast
// through a recording proxy, so the test sees what went over the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { launchBrowser, watchPage } from './browser.mjs';
import { startRecordingProxy, serverWsMessages } from './browser_net.mjs';
import { startServer, postJson, waitFor } from './harness.mjs';

test('browser EventSource reconnects by itself after its stream is cut and resumes with Last-Event-ID without gap or duplicate', async () => {
  let srv, proxy, browser;
  try {
    srv = await startServer(['--sse-retry-ms', '200'], { shards: 2 });
    proxy = await startRecordingProxy(srv.port);
    browser = await launchBrowser();
    const page = await browser.newPage();
    const watch = watchPage(page);
    await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
    await page.evaluate(() => {
      window.seen = []; window.opens = 0; window.errorEvents = 0;
      window.es = new EventSource('/v1/topics/ticks/events');
      window.es.onopen = () => { window.opens += 1; };
      window.es.onerror = () => { window.errorEvents += 1; };
      window.es.addEventListener('message', (ev) => window.seen.push({ id: ev.lastEventId, n: JSON.parse(ev.data).n }));
    });
    await page.waitForFunction(() => window.opens === 1, null, { timeout: 15000 });
    for (let n = 1; n <= 8; n++) assert.equal((await postJson(srv.url('/v1/topics/ticks'), { n })).status, 200);
    await page.waitForFunction(() => window.seen.length === 8, null, { timeout: 15000 });

    // Cut the stream under the browser, and hold its reconnection until 12 more are published:
    // it can only get them by resuming.
    proxy.hold();
    proxy.cutAll();
    for (let n = 9; n <= 20; n++) assert.equal((await postJson(srv.url('/v1/topics/ticks'), { n })).status, 200);
    await page.waitForFunction(() => window.errorEvents >= 1 && window.es.readyState === EventSource.CONNECTING,
                               null, { timeout: 15000 });
    await waitFor(() => proxy.heldCount() >= 1, 15000, 'the browser reconnecting');
    proxy.release();
    await page.waitForFunction(() => window.seen.length >= 20 && window.opens === 2, null, { timeout: 15000 });
    await page.waitForTimeout(200);  // a duplicate would arrive now
    const { seen, opens, state } = await page.evaluate(() => ({ seen: window.seen, opens: window.opens, state: window.es.readyState }));
    await page.evaluate(() => window.es.close());

    assert.equal(opens, 2);
    assert.equal(state, 1);  // OPEN
    assert.deepEqual(seen.map((e) => e.n), Array.from({ length: 20 }, (_, i) => i + 1));
    const epochs = new Set(seen.map((e) => e.id.split('-')[0]));
    assert.equal(epochs.size, 1);
    assert.deepEqual(seen.map((e) => Number(e.id.split('-')[1])), Array.from({ length: 20 }, (_, i) => i + 1));
    // The browser resumed by itself, with the id of the last event it had.
    const streams = proxy.requestHeads().filter((h) => h.startsWith('GET /v1/topics/ticks/events '));
    assert.equal(streams.length, 2, streams.join('\n'));
    assert.doesNotMatch(streams[0], /^last-event-id:/im);
    assert.match(streams[1], new RegExp(`^last-event-id: ${seen[7].id}\\r$`, 'im'));
    // What the cut may make chromium report is about the stream it cut, nothing else.
    for (const e of watch.errors) assert.match(e, /\/v1\/topics\/ticks\/events/, JSON.stringify(watch.errors));
  } finally {
    await browser?.close();
    await proxy?.close();
    await srv?.stop();
  }
});

// The payload of publication i: `size` characters, some of them outside ASCII.
function payload(i, size) {
  const unit = `#${i}:é✓abcdefghijklmnopqrstuvwxyz0123456789|`;
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

test('browser WebSocket receives fragmented topic messages whole and in order, large ones included', async () => {
  let srv, proxy, browser;
  try {
    srv = await startServer(['--publish-bytes-max', String(1024 * 1024)], { shards: 2 });
    proxy = await startRecordingProxy(srv.port);
    browser = await launchBrowser();
    const page = await browser.newPage();
    const watch = watchPage(page);
    await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
    await page.evaluate(() => {
      window.got = [];
      window.wsCloseCode = null;
      window.ws = new WebSocket(`ws://${location.host}/ws`);
      window.ws.onopen = () => window.ws.send(JSON.stringify({ id: 'sub-1', action: 'subscribe', payload: { topic: 'frag' } }));
      window.ws.onmessage = (ev) => window.got.push(ev.data);
      window.ws.onclose = (ev) => { window.wsCloseCode = ev.code; };
    });
    await page.waitForFunction(() => window.got.some((m) => JSON.parse(m).event === 'subscribed'), null, { timeout: 15000 });

    // Sizes around the frame length encodings (125/126, 65535/65536) and large ones.
    const sizes = [1, 125, 126, 65535, 65536, 3, 250000, 900000, 70000, 10];
    for (const [i, size] of sizes.entries()) {
      const res = await postJson(srv.url('/v1/topics/frag'), { i, s: payload(i, size) });
      assert.equal(res.status, 200, JSON.stringify(res.json));
    }
    await page.waitForFunction((n) => window.got.length === n + 1, sizes.length, { timeout: 30000 });
    // Check in the page (no need to carry megabytes back): each message parsed whole.
    const summary = await page.evaluate(async () => {
      const out = [];
      for (const text of window.got) {
        const m = JSON.parse(text);
        if (m.event !== 'message') { out.push({ event: m.event }); continue; }
        const bytes = new TextEncoder().encode(m.data.data.s);
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        out.push({ event: m.event, id: m.id, topic: m.data.topic, seq: m.data.seq, i: m.data.data.i,
                   length: m.data.data.s.length, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') });
      }
      return out;
    });
    assert.equal(summary[0].event, 'subscribed');
    const messages = summary.slice(1);
    assert.deepEqual(messages.map((m) => m.i), sizes.map((_, i) => i));
    for (const [i, m] of messages.entries()) {
      assert.equal(m.event, 'message');
      assert.equal(m.id, 'sub-1');
      assert.equal(m.topic, 'frag');
      assert.equal(m.seq, i + 1);
      assert.equal(m.length, sizes[i]);
      assert.equal(m.sha256, crypto.createHash('sha256').update(payload(i, sizes[i])).digest('hex'), `message ${i}`);
    }
    // On the wire each topic message was fragmented: a text frame without FIN, then continuations.
    const ws = proxy.conns.find((c) => Buffer.concat(c.up).toString('latin1').startsWith('GET /ws '));
    const wire = serverWsMessages(ws.down).filter((m) => m.opcode === 1);
    const topicMessages = wire.filter((m) => JSON.parse(m.payload.toString('utf8')).event === 'message');
    assert.equal(topicMessages.length, sizes.length);
    for (const m of topicMessages) assert.ok(m.frames >= 2, `a topic message in ${m.frames} frame(s)`);
    assert.equal(await page.evaluate(() => window.wsCloseCode), null);
    await page.evaluate(() => window.ws.close(1000));
    assert.deepEqual(watch.errors, []);
  } finally {
    await browser?.close();
    await proxy?.close();
    await srv?.stop();
  }
});
