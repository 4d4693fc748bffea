#!/usr/bin/env node
// The tracker fleet run (issue #12): TRACKERS trackers each publish a state every second (native
// batch publishes) to DASHBOARDS plain WebSocket dashboards watching 10-50 random trackers each,
// for FLEET_SECONDS (default 60; `make test` runs 10). Checks that every state reaches every
// watcher once, in order (each state carries its tracker's round number), and prints the
// figures: deliveries/s, latency p50/p99/max (publish call to frame received, same clock), and
// the server's CPU over the publishing window (from /proc). Exit code: 0 only when nothing was
// lost, duplicated or reordered. Loopback only; the server is stopped by its PID.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const WS = require('ws');  // atmosphere.js's bundled ws 1.x (the lockfile pins it)
const { sleep, startHerald } = require('./harness');

const HERALD_BIN = process.env.HERALD_BIN;
const SECONDS = Number(process.env.FLEET_SECONDS || 60);
const TRACKERS = Number(process.env.FLEET_TRACKERS || 2000);
const DASHBOARDS = Number(process.env.FLEET_DASHBOARDS || 200);
const ADMIN_KEY = 'hka_fleet_' + crypto.randomBytes(12).toString('hex');
let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };

function startServer() {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-fleet-'));
  return startHerald({ bin: HERALD_BIN, env: { HERALD_ADMIN_KEY: ADMIN_KEY }, store: 'sqlite', data });
}
async function call(method, url, body, headers = {}) {
  const r = await fetch(url, { method, body, headers });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}
const cpuTicks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);  // utime + stime (fields 14, 15)
};

async function main() {
  const srv = await startServer();
  const admin = (m, p, b) => call(m, srv.base + p, JSON.stringify(b),
    { Authorization: 'Bearer ' + ADMIN_KEY, 'Content-Type': 'application/json' });
  await admin('POST', '/v1/admin/tenants', { id: 'fleet' });
  const pub = await admin('POST', '/v1/admin/apps', { tenant: 'fleet', name: 'pub', role: 'publisher' });
  const ids = Array.from({ length: TRACKERS }, (_, i) => 100000 + i);
  for (let i = 0; i < ids.length; i += 50) {
    await Promise.all(ids.slice(i, i + 50).map((id) => admin('PUT', '/v1/admin/subjects/' + id, { tenant: 'fleet', kind: 'tracker' })));
  }
  const USERS = Math.ceil(DASHBOARDS / 50);
  const hashes = [];
  for (let u = 0; u < USERS; u++) {
    await admin('POST', '/v1/admin/users', { tenant: 'fleet', login: 'ops' + u, password: 'pw' });
    hashes.push((await call('POST', srv.base + '/tracker/v2/user/auth', JSON.stringify({ login: 'ops' + u, password: 'pw' }))).hash);
  }
  let round = 0, measuringRounds = false;
  const pubMs = [];  // publish call to its last reply, per round: the publish path's share
  const publishRound = async () => {
    const r = round++;
    const t = Date.now();
    const batches = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const evs = ids.slice(i, i + 1000).map((id) =>
        `{"topic":"/trackers/${id}","type":"state","subject":"${id}","retain":true,` +
        `"data":{"source_id":${id},"n":${r},"t":${t},"connection_status":"active","movement_status":"moving"}}`);
      batches.push(call('POST', srv.base + '/v1/events', '[' + evs.join(',') + ']',
        { Authorization: 'Bearer ' + pub.api_key, 'Content-Type': 'application/json' }));
    }
    await Promise.all(batches);
    if (measuringRounds) pubMs.push(Date.now() - t);
  };
  await publishRound();  // round 0: every tracker has a state before the dashboards come

  // Dashboards: each watches 10-50 distinct random trackers.
  const dashes = [];
  let deliveries = 0, problems = 0;
  const lat = [];
  const problem = (msg) => { if (problems++ < 10) console.log('fleet: ' + msg); };
  for (let d = 0; d < DASHBOARDS; d++) {
    const n = 10 + Math.floor(rand() * 41);
    const watch = new Set();
    while (watch.size < n) watch.add(ids[Math.floor(rand() * ids.length)]);
    const dash = { watch: [...watch], last: new Map(), replied: false, measuring: false };
    dash.ws = new WS(srv.base.replace('http', 'ws') + '/tracker/v2/event/subscription?X-Atmosphere-tracking-id=0');
    dash.ws.on('message', (m) => {
      const text = String(m);
      if (text[0] !== '{') return;  // handshake, X
      const f = JSON.parse(text);
      if (f.type === 'response') { dash.replied = true; return; }
      if (f.type !== 'event' || f.event !== 'state') { problem('unexpected ' + text.slice(0, 200)); return; }
      const id = f.data.source_id, prev = dash.last.get(id);
      if (prev === undefined) {
        if (dash.measuring) problem(`dashboard ${d}: first frame of ${id} came late`);
      } else if (f.data.n !== prev + 1) {
        problem(`dashboard ${d} tracker ${id}: round ${f.data.n} after ${prev}`);
      }
      dash.last.set(id, f.data.n);
      if (dash.measuring) { deliveries++; lat.push(Date.now() - f.data.t); }
    });
    dash.ws.on('error', (e) => problem('socket error ' + e.message));
    dash.ws.on('close', (code) => { if (!dash.done) problem(`dashboard ${d} closed ${code}`); });
    dash.ws.on('open', () => dash.ws.send(JSON.stringify({ action: 'subscribe', hash: hashes[d % USERS], events: ['state'], trackers: dash.watch })));
    dashes.push(dash);
  }
  const t0 = Date.now();
  while (!dashes.every((d) => d.replied && d.last.size === d.watch.length)) {
    if (Date.now() - t0 > 30000) throw new Error('dashboards did not all subscribe and get snapshots');
    await sleep(50);
  }
  for (const d of dashes) d.measuring = true;
  measuringRounds = true;
  const hb = setInterval(() => dashes.forEach((d) => d.ws.send('X')), 20000);
  const cpu0 = cpuTicks(srv.child.pid), w0 = Date.now();
  let late = 0;
  for (let s = 0; s < SECONDS; s++) {
    const due = w0 + s * 1000;
    if (Date.now() > due + 500) late++;
    await sleep(Math.max(0, due - Date.now()));
    await publishRound();
  }
  const finalRound = round - 1;
  const expected = dashes.reduce((a, d) => a + d.watch.length, 0) * SECONDS;
  const drainEnd = Date.now() + 15000;
  while (deliveries < expected && Date.now() < drainEnd) await sleep(50);
  const wall = (Date.now() - w0) / 1000;
  const cpuS = (cpuTicks(srv.child.pid) - cpu0) / 100;  // USER_HZ is 100 on Linux
  clearInterval(hb);
  for (const d of dashes) {
    for (const id of d.watch) {
      if (d.last.get(id) !== finalRound) problem(`a dashboard's tracker ${id} ended at round ${d.last.get(id)}, not ${finalRound}`);
    }
    d.done = true;
    d.ws.close();
  }
  lat.sort((a, b) => a - b);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] : NaN);
  console.log(`fleet: ${TRACKERS} trackers x 1 state/s, ${DASHBOARDS} dashboards, ` +
    `${dashes.reduce((a, d) => a + d.watch.length, 0)} watches, ${SECONDS} s`);
  console.log(`fleet: deliveries ${deliveries} of ${expected} expected; ${(deliveries / wall).toFixed(0)} deliveries/s ` +
    `over ${wall.toFixed(1)} s; publishes ${(TRACKERS * SECONDS / wall).toFixed(0)} states/s`);
  console.log(`fleet: latency ms p50 ${pct(0.5)} p99 ${pct(0.99)} max ${lat[lat.length - 1]}`);
  pubMs.sort((a, b) => a - b);
  console.log(`fleet: of which the publish call (2 batches of 1000, until both replied) ms ` +
    `p50 ${pubMs[Math.floor(pubMs.length / 2)]} max ${pubMs[pubMs.length - 1]}`);
  console.log(`fleet: server CPU ${cpuS.toFixed(2)} s over ${wall.toFixed(1)} s = ${(100 * cpuS / wall).toFixed(1)} % of one core` +
    (late ? `; ${late} publishing rounds started >0.5 s late (load generator)` : ''));
  try { process.kill(srv.child.pid, 'SIGTERM'); } catch (e) { /* gone */ }
  await sleep(300);
  fs.rmSync(srv.data, { recursive: true, force: true });
  if (deliveries !== expected) problem(`delivered ${deliveries}, expected ${expected}`);
  console.log(problems ? `fleet: FAILED (${problems} problems)` : 'fleet: every state delivered once, in order, to every watcher');
  process.exit(problems ? 1 : 0);
}

main().catch((e) => { console.log('fleet: FAILED ' + (e && e.stack || e)); process.exit(1); });
