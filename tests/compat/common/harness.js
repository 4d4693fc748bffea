// What the Node compatibility suites (tests/compat/{ringcentral,smsgw,tracker}) share: waiting,
// checks, starting the real binary on 127.0.0.1:0, HTTP, and the scenario loop. npm_work.sh
// copies this file next to each suite's run.js, which requires it as './harness'.
'use strict';

const { spawn } = require('child_process');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(cond, msg) { if (!cond) throw new Error(msg); }

// Polls cond() (which may be async) every 20 ms for up to ms; throws 'timed out waiting for what'.
async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error('timed out waiting for ' + what);
}

// Starts `bin serve` with the given store and data directory on `listen` (default 127.0.0.1:0),
// env added to the process's; onChild(child) right after the spawn (to stop it whatever happens
// next). Resolves { base, port, data, child, env } once the binary prints its listening line;
// rejects with its stderr's tail when it exits first or takes over startMs.
function startHerald({ bin, env = {}, store = 'memory', data, listen = '127.0.0.1:0', startMs = 15000,
  onChild = () => {} }) {
  const child = spawn(bin, ['serve', '--listen', listen, '--store', store, '--data', data],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  onChild(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; if (stderr.length > 20000) stderr = stderr.slice(-10000); });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('herald did not start: ' + stderr)), startMs);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/herald listening on (http:\/\/[0-9.]+:(\d+))/);
      if (m) { clearTimeout(t); resolve({ base: m[1], port: Number(m[2]), data, child, env }); }
    });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error('herald exited ' + code + ': ' + stderr)); });
  });
}

// fetch, with the body read as text and, when it is JSON, parsed (json is null otherwise).
async function http(method, url, body, headers = {}) {
  const r = await fetch(url, { method, body, headers });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  return { status: r.status, text, json, headers: r.headers };
}

// An exception or rejection nobody caught (the client under test crashing, say) is logged and
// fails the scenario that is running (runScenarios).
let crashed = null;
function trapCrashes(log = console.log) {
  process.on('uncaughtException', (e) => { crashed = e; log('UNCAUGHT: ' + (e && e.stack)); });
  process.on('unhandledRejection', (e) => { crashed = e; log('UNHANDLED REJECTION: ' + (e && e.stack)); });
}

// Runs each [name, fn] in order (only those whose first word is in `only`, when given), prints
// PASS or FAIL per scenario and a summary; returns the number that failed.
async function runScenarios(scenarios, only, log = console.log) {
  const results = [];
  for (const [name, fn] of scenarios) {
    if (only && !only.includes(name.split(' ')[0])) continue;
    const t0 = Date.now();
    crashed = null;
    try {
      await fn();
      if (crashed) throw new Error('client crashed: ' + crashed.message);
      results.push([name, true]);
      log(`PASS ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      results.push([name, false]);
      log(`FAIL ${name}: ${e.message}`);
    }
  }
  const failed = results.filter((r) => !r[1]).length;
  log(`\n${results.length - failed} of ${results.length} scenarios passed`);
  return failed;
}

module.exports = { sleep, check, waitFor, startHerald, http, trapCrashes, runScenarios };
