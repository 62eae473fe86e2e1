// Browser harness for the browser tests (tests/node/browser_*.test.mjs): Debian's chromium
// (apt, scripts/setup) driven headless by playwright-core (pinned in package-lock.json). Nothing
// is downloaded: the browser is /usr/bin/chromium, or the binary named by RINGCAST_CHROMIUM.
// Each test launches its own browser and closes it in `finally`.
import { chromium } from 'playwright-core';
import fs from 'node:fs';

export const CHROMIUM = process.env.RINGCAST_CHROMIUM || '/usr/bin/chromium';

// Launches headless chromium. The sandbox is off (tests run as root in containers, where the
// sandbox cannot start); the pages it loads are the tests' own, on loopback.
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM} (scripts/setup installs Debian's chromium; ` +
                    'RINGCAST_CHROMIUM names another binary)');
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update'],
  });
}

// Collects what a page reports as wrong: console errors, uncaught page errors and failed
// requests. A test asserts `errors` is empty, or that it holds what the test caused on purpose.
export function watchPage(page) {
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location()?.url ?? '';
    // The browser asks for /favicon.ico by itself; a page without one is not an error of the page.
    if (where.endsWith('/favicon.ico')) return;
    errors.push(`console: ${msg.text()}${where ? ` (${where})` : ''}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (req) => {
    errors.push(`requestfailed: ${req.method()} ${req.url()}: ${req.failure()?.errorText ?? '?'}`);
  });
  return { errors };
}
