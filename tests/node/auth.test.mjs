// Browser-style authentication with `eventsource` (EventSource cannot set headers): ?api_key=,
// and subscription tokens (?token=) signed here with node:crypto, HS256 and ES256.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { startServer, postJson, waitFor } from './harness.mjs';
import { wireRecorder } from './ringcast_schemas.mjs';

// Every topic event the clients receive is checked against docs/schemas.
const wire = wireRecorder();
afterEach(() => wire.assertValid());

const b64url = (data) => Buffer.from(data).toString('base64url');
const SECRET = 'a-node-test-secret-of-32-bytes-or-more';

function mint(alg, claims, signer) {
  const header = b64url(JSON.stringify({ alg, typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  return `${header}.${body}.${b64url(signer(Buffer.from(`${header}.${body}`)))}`;
}
const hs256 = (claims) => mint('HS256', claims, (data) => createHmac('sha256', SECRET).update(data).digest());
const es256 = (claims, privateKey) =>
  mint('ES256', claims, (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
const inMinutes = (m) => Math.floor(Date.now() / 1000) + 60 * m;

// Opens an EventSource and resolves with the first message, or with the error's status code.
function firstEvent(url) {
  return new Promise((resolve) => {
    const es = new EventSource(url, { fetch: wire.sseFetch });
    const timer = setTimeout(() => { es.close(); resolve({ timeout: true }); }, 10000);
    es.addEventListener('message', (ev) => {
      clearTimeout(timer);
      es.close();
      resolve({ data: JSON.parse(ev.data) });
    });
    es.onerror = (err) => { clearTimeout(timer); es.close(); resolve({ status: err.code }); };
  });
}

test('eventsource subscribes with ?api_key= and with HS256 and ES256 tokens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringcast-auth-'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'secret'), SECRET);
  writeFileSync(join(dir, 'ec.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'keys'), 'sk-backend\nsk-news subscribe=news.> publish=\n');
  const srv = await startServer(['--api-keys-file', join(dir, 'keys'),
                                 '--jwt-hs256-secret-file', join(dir, 'secret'),
                                 '--jwt-es256-public-key-file', join(dir, 'ec.pub')], { shards: 2 });
  try {
    const published = await postJson(srv.url('/v1/topics/news.eu'), { headline: 'hello' },
                                      { authorization: 'Bearer sk-backend' });
    assert.equal(published.status, 200);
    const events = (query) => srv.url(`/v1/topics/news.eu/events?since=0&${query}`);

    assert.deepEqual(await firstEvent(events('api_key=sk-news')), { data: { headline: 'hello' } });
    const hsToken = hs256({ sub: 'browser-1', channels: ['news.*'], exp: inMinutes(5) });
    assert.deepEqual(await firstEvent(events(`token=${hsToken}`)), { data: { headline: 'hello' } });
    const esToken = es256({ channel: 'news.eu', exp: inMinutes(5) }, privateKey);
    assert.deepEqual(await firstEvent(events(`token=${esToken}`)), { data: { headline: 'hello' } });

    // Without credentials, with a wrong key, a forged or expired token: 401.
    assert.deepEqual(await firstEvent(srv.url('/v1/topics/news.eu/events')), { status: 401 });
    assert.deepEqual(await firstEvent(events('api_key=sk-nope')), { status: 401 });
    const forged = hsToken.slice(0, hsToken.lastIndexOf('.')) + '.' + b64url('x'.repeat(32));
    assert.deepEqual(await firstEvent(events(`token=${forged}`)), { status: 401 });
    const expired = hs256({ channels: ['news.*'], exp: inMinutes(-5) });
    assert.deepEqual(await firstEvent(events(`token=${expired}`)), { status: 401 });
    // Topics outside the key's or the token's patterns: 403.
    assert.deepEqual(await firstEvent(srv.url('/v1/topics/sports/events?api_key=sk-news')), { status: 403 });
    assert.deepEqual(await firstEvent(srv.url(`/v1/topics/news.eu.x/events?token=${hsToken}`)), { status: 403 });
    assert.deepEqual(await firstEvent(srv.url(`/v1/topics/news.us/events?token=${esToken}`)), { status: 403 });
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a token-authenticated eventsource receives live publications', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringcast-auth-'));
  writeFileSync(join(dir, 'secret'), SECRET + '\n');
  const srv = await startServer(['--api-key', 'sk-backend', '--jwt-hs256-secret-file', join(dir, 'secret')]);
  try {
    const token = hs256({ sub: 'u1', channels: ['room.>'], exp: inMinutes(5) });
    const seen = [];
    let open = false;
    const es = new EventSource(srv.url(`/v1/topics/room.1/events?token=${token}`), { fetch: wire.sseFetch });
    es.onopen = () => { open = true; };
    es.addEventListener('message', (ev) => {
      seen.push(JSON.parse(ev.data).n);
    });
    await waitFor(() => open, 10000, 'open');
    for (let n = 1; n <= 5; n++) {
      const r = await postJson(srv.url('/v1/topics/room.1'), { n }, { 'x-api-key': 'sk-backend' });
      assert.equal(r.status, 200);
    }
    await waitFor(() => seen.length === 5, 10000, '5 events');
    es.close();
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
