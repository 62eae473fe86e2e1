// `https://` upstreams through ringcast, with certificates from a CA made by `openssl` at test
// time (fakes/test-ca.mjs): ca_file trusted by name and by IP literal; a hostname mismatch, an
// expired certificate and a CA missing from the system store refused with 502
// upstream_tls_error; tls_verify = false accepts them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { makeTestCa } from './fakes/test-ca.mjs';
import { startOpenAIFake } from './fakes/openai-fake.mjs';
import { startRingcast } from './fakes/ringcast.mjs';
import { UPSTREAM_KEY, openaiUpstream } from './fakes/upstream-setup.mjs';

test('openai upstream over HTTPS: ca_file, IP literals, hostname mismatch, expired and untrusted certificates, tls_verify off', async () => {
  const ca = makeTestCa();
  const serve = (leaf) => startOpenAIFake({ apiKey: UPSTREAM_KEY, tls: { key: ca.pem(leaf.key), cert: ca.pem(leaf.cert) } });
  const good = await serve(ca.valid);
  const wrong = await serve(ca.wrongHost);
  const expired = await serve(ca.expired);
  let srv = null;
  try {
    const routes = {
      'm-name': openaiUpstream('name', good.baseURL, { ca_file: ca.caFile }),
      'm-ip': openaiUpstream('ip', good.ipBaseURL, { ca_file: ca.caFile }),
      'm-wrong-host': openaiUpstream('wrong_host', wrong.baseURL, { ca_file: ca.caFile }),
      'm-expired': openaiUpstream('expired', expired.baseURL, { ca_file: ca.caFile }),
      'm-system-store': openaiUpstream('system_store', good.baseURL),
      'm-unverified': openaiUpstream('unverified', wrong.baseURL, { tls_verify: false }),
    };
    srv = await startRingcast({
      config: { upstreams: Object.values(routes).map((u) => ({ ...u, retries_max: 0 })),
                models: Object.entries(routes).map(([name, u]) => ({ name, upstream: u.name, upstream_model: 'fake-model' })) },
      env: { FAKE_UPSTREAM_KEY: UPSTREAM_KEY } });
    assert.match(srv.log(), /tls_verify = false/);
    const client = new OpenAI({ apiKey: 'client', baseURL: srv.baseURL, maxRetries: 0 });
    const ask = (model, stream = false) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'secure' }], stream });
    for (const model of ['m-name', 'm-ip', 'm-unverified']) {
      assert.equal((await ask(model)).choices[0].message.content, 'echo:secure t1 t2 t3 t4 t5', model);
    }
    let text = '';
    for await (const c of await ask('m-name', true)) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'echo:secure t1 t2 t3 t4 t5');
    const refused = { 'm-wrong-host': /hostname mismatch/, 'm-expired': /expired/, 'm-system-store': /certificate verify failed/ };
    for (const [model, why] of Object.entries(refused)) {
      await assert.rejects(ask(model), (e) => e.status === 502 && e.code === 'upstream_tls_error' && why.test(e.message), model);
    }
    assert.equal(wrong.generationRequests().length, 1, 'only the unverified upstream got a request through');
    assert.equal(expired.generationRequests().length, 0);
  } finally {
    if (srv) await srv.stop();
    await Promise.all([good.close(), wrong.close(), expired.close()]);
    ca.remove();
  }
});
