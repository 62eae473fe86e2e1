// The OpenAI fake in a child process of its own (child_process.fork), so that its event loop
// (and the timestamps it records) is not delayed by a test process busy with many clients.
// IPC: the parent sends {cmd: 'script'|'defaults'|'requests'|'stats'|'close', …}; the child
// answers {id, result}. Times in `requests` are absolute (performance.timeOrigin + now, ms), so
// the parent compares them with its own absolute times.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { startOpenAIFake } from './openai-fake.mjs';

const options = JSON.parse(process.argv[2] ?? '{}');
const fake = await startOpenAIFake(options);
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const abs = (t) => (t === null ? null : performance.timeOrigin + t);

process.on('message', async (msg) => {
  let result = null;
  if (msg.cmd === 'script') fake.script(...msg.behaviours);
  else if (msg.cmd === 'defaults') fake.defaults = msg.defaults;
  else if (msg.cmd === 'requests') {
    result = fake.requests.map((r) => ({ seq: r.seq, path: r.path, tag: r.body?.messages?.[0]?.content ?? null,
                                         receivedAt: abs(r.receivedAt), firstByteAt: abs(r.firstByteAt),
                                         finishedAt: abs(r.finishedAt), abortedAt: abs(r.abortedAt) }));
  } else if (msg.cmd === 'stats') {
    result = { active: fake.active(), connections: fake.connections(), accepted: fake.acceptedConnections,
               loop_delay_p99_ms: loopDelay.percentile(99) / 1e6, loop_delay_max_ms: loopDelay.max / 1e6 };
  } else if (msg.cmd === 'close') {
    await fake.close();
    process.send({ id: msg.id, result: null }, () => process.exit(0));
    return;
  }
  process.send({ id: msg.id, result });
});
process.send({ ready: true, port: fake.port, baseURL: fake.baseURL });
