// The browser harness works: Debian's chromium launches headless under playwright-core and
// loads a page from a live ringcast; watchPage sees a page's errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, watchPage } from './browser.mjs';
import { startServer } from './harness.mjs';

test('chromium launches and fetches from ringcast', async () => {
  let srv, browser;
  try {
    srv = await startServer();
    browser = await launchBrowser();
    const page = await browser.newPage();
    const watch = watchPage(page);
    const res = await page.goto(srv.url('/healthz'));
    assert.equal(res.status(), 200);
    const models = await page.evaluate(async () => (await (await fetch('/v1/models')).json()).data.map((m) => m.id));
    assert.ok(models.includes('ringcast-mock'), JSON.stringify(models));
    await page.evaluate(() => { setTimeout(() => { throw new Error('deliberate'); }, 0); });
    await page.waitForTimeout(200);
    assert.deepEqual(watch.errors.filter((e) => !e.includes('deliberate')), []);
    assert.ok(watch.errors.some((e) => e.startsWith('pageerror: ') && e.includes('deliberate')), JSON.stringify(watch.errors));
  } finally {
    await browser?.close();
    await srv?.stop();
  }
});
