// Runs the Codex CLI (npm @openai/codex, pinned in package-lock.json; its linux binary comes from
// the registry as the optional dependency @openai/codex-linux-x64, nothing is downloaded at run
// time) non-interactively against an OpenAI-compatible base URL, e.g. a ringcast under test.
//
//   const run = await codexExec({ baseUrl: srv.url('/v1'), model: 'ringcast-mock', prompt: 'Hi' });
//   run.code, run.events (codex exec --json lines), run.agentText(), run.stderr
//
// Each run gets a fresh CODEX_HOME (config.toml with a `ringcast` model provider, wire_api
// "responses", the key from an env variable; analytics and update checks off) with a working
// directory inside, removed afterwards unless the caller passed its own `home` (codexHome()):
// then `resume: true` continues the last session of that home.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CODEX_JS = path.join(here, 'node_modules', '@openai', 'codex', 'bin', 'codex.js');

export function codexHome(baseUrl, model) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-codex-home-'));
  fs.writeFileSync(path.join(home, 'config.toml'), [
    `model = ${JSON.stringify(model)}`,
    'model_provider = "ringcast"',
    'check_for_update_on_startup = false',
    '',
    '[analytics]',
    'enabled = false',
    '',
    '[model_providers.ringcast]',
    'name = "ringcast"',
    `base_url = ${JSON.stringify(baseUrl)}`,
    'wire_api = "responses"',
    'env_key = "RINGCAST_CODEX_KEY"',
    'request_max_retries = 0',
    'stream_max_retries = 0',
    '',
  ].join('\n'));
  return home;
}

export async function codexExec({ baseUrl, model, prompt, home, resume = false, timeoutMs = 120000 }) {
  if (!fs.existsSync(CODEX_JS)) throw new Error(`${CODEX_JS} is missing: run npm ci in tests/node`);
  const codexHomeDir = home ?? codexHome(baseUrl, model);
  // The working directory lives in the home: `resume --last` looks for sessions of the same one.
  const workdir = path.join(codexHomeDir, 'work');
  fs.mkdirSync(workdir, { recursive: true });
  const args = [CODEX_JS, 'exec', '--json', '--skip-git-repo-check', '--cd', workdir];
  if (resume) args.push('resume', '--last');
  args.push(prompt);
  const proc = spawn(process.execPath, args, {
    cwd: workdir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CODEX_HOME: codexHomeDir, RINGCAST_CODEX_KEY: 'sk-ringcast-test',
           NO_COLOR: '1' },
  });
  let stdout = '', stderr = '';
  proc.stdout.on('data', (c) => { stdout += c; });
  proc.stderr.on('data', (c) => { stderr += c; });
  let timer;
  const code = await new Promise((resolve) => {
    timer = setTimeout(() => { proc.kill('SIGKILL'); resolve('timeout'); }, timeoutMs);
    proc.on('exit', (c) => resolve(c));
  });
  clearTimeout(timer);
  if (!home) fs.rmSync(codexHomeDir, { recursive: true, force: true });
  const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return {
    code, events, stdout, stderr, home: codexHomeDir,
    agentText: () => events.filter((e) => e.type === 'item.completed' && e.item.type === 'agent_message')
                          .map((e) => e.item.text).join('\n'),
  };
}
