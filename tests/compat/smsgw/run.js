#!/usr/bin/env node
// Compatibility suite of smsgw.md §9: runs the SMS gateway's own reconnecting client
// (seed_client.js: the seed's snippet, line breaks restored) unmodified but for its URL and key
// literals, under Node with the global WebSocket set to `ws` 8 (pinned by package-lock.json)
// plus recording listeners (and an error listener: browsers never throw), against a Herald
// started here on 127.0.0.1:0 with timers shortened by configuration. Events are published
// natively; REST is called with fetch. Each scenario prints PASS or FAIL; the exit code is the
// number of failures. Loopback only; servers are stopped by their PIDs.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const vm = require('vm');
const WebSocket = require('ws');
const { sleep, check, waitFor, startHerald, http, trapCrashes, runScenarios } = require('./harness');

const HERALD_BIN = process.env.HERALD_BIN || path.resolve(__dirname, '../../../build/release/herald');
const ADMIN_KEY = 'hka_compat_' + crypto.randomBytes(12).toString('hex');
const SEED_URL = 'wss://smsgateway-api.onrender.com/ws';
const SEED_KEY = 'YOUR_API_KEY';
const SEED_TEXT = fs.readFileSync(path.join(__dirname, 'seed_client.js'), 'utf8');
const DEADLINE_MS = 150000;
// Shortened timers (seconds) of the main server.
const PING_S = 1, LIVENESS_S = 3, AUTH_TIMEOUT_S = 2, WS_TOKEN_TTL_S = 2;

const servers = [];
const cleanups = [];
const clients = [];
let main = null;  // { base, port, data, child }

function log(...a) { console.log(...a); }
// Canonical JSON: equal objects compare equal whatever their key order.
function canon(v) {
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
  }
  return JSON.stringify(v);
}

// ---------------------------------------------------------------- servers

function startServer(env, data, listen = '127.0.0.1:0') {
  return startHerald({ bin: HERALD_BIN, env: { HERALD_ADMIN_KEY: ADMIN_KEY, ...env }, store: 'sqlite',
    data, listen, onChild: (c) => servers.push(c) }).then((s) => ({ ...s, env }));
}

function stop(child) {
  if (child && child.exitCode === null) {
    try { process.kill(child.pid, 'SIGTERM'); } catch (e) { /* gone */ }
    const pid = child.pid;
    setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch (e) { /* gone */ } }, 5000).unref();
  }
}

function tempDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-smsgw-compat-'));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function admin(srv, method, p, body) {
  const r = await http(method, srv.base + p, body === undefined ? undefined : JSON.stringify(body),
    { Authorization: 'Bearer ' + ADMIN_KEY, 'Content-Type': 'application/json' });
  if (r.status >= 300) throw new Error(`admin ${method} ${p}: ${r.status} ${r.text}`);
  return r.json;
}

// REST of the dialect with an API key (X-API-Key when `xkey`).
function rest(method, p, key, body, extra = {}) {
  const headers = { ...extra };
  if (key) headers.Authorization = 'Bearer ' + key;
  return http(method, main.base + '/smsgw' + p, body, headers);
}

const world = {};

async function setUp(srv) {
  await admin(srv, 'POST', '/v1/admin/tenants', { id: 't1' });
  await admin(srv, 'POST', '/v1/admin/tenants', { id: 't2' });
  const app = (tenant, name, role, extra = {}) => admin(srv, 'POST', '/v1/admin/apps',
    { tenant, name, role, api_key_format: 'sgw', ...extra });
  world.A = await app('t1', 'A', 'app');
  world.B = await app('t1', 'B', 'app');
  world.ADM = await app('t1', 'ADM', 'admin');
  world.C = await app('t2', 'C', 'app');
  world.PUBR = await app('t1', 'PUBR', 'publisher');
  world.RL = await app('t1', 'RL', 'app');       // only for the REST rate limit
  world.REV = await app('t1', 'REV', 'app');     // rotated in scenario 5
  world.CONN = await app('t1', 'CONN', 'app');   // holds max_connections_per_key sockets
  // The operator's backend: admin role, publish scope (publishes for both tenants).
  world.OPS = await app('t1', 'OPS', 'admin', { scopes: ['publish'] });
  for (const k of ['A', 'B', 'ADM', 'C', 'PUBR', 'RL', 'REV', 'CONN', 'OPS'])
    check(/^sgw_[0-9a-f]{32}$/.test(world[k].api_key), 'sgw key format of ' + k);
}

// Publishes one event natively with the operator's key; returns the stored event ({time, ...}).
let msgNo = 0;
function newId() { return 'msg_' + (++msgNo).toString(16).padStart(6, '0') + crypto.randomBytes(3).toString('hex'); }
async function publishRaw(ev, srv = main) {
  return http('POST', srv.base + '/v1/events', JSON.stringify(ev),
    { Authorization: 'Bearer ' + world.OPS.api_key, 'Content-Type': 'application/json' });
}
async function publish(ev, srv = main) {
  const r = await publishRaw(ev, srv);
  if (r.status !== 201) throw new Error('publish: ' + r.status + ' ' + r.text);
  return { ...ev, time: r.json.events[0].time };
}
function status(tenant, app, subject, data) {
  return publish({ topic: `/sms/${tenant}/status`, type: 'sms.status', tenant, app, subject, retain: true, data });
}
function inbound(tenant, subject, data, app) {
  const ev = { topic: `/sms/${tenant}/inbound`, type: 'sms.inbound', tenant, subject, retain: true, data };
  if (app) ev.app = app;
  return publish(ev);
}
// The frame §2.3 renders for a published event.
function expected(ev) {
  if (ev.type === 'sms.status') {
    const o = { type: 'sms_status', messageId: ev.subject, appId: ev.app, tenantId: ev.tenant, status: ev.data.status };
    if (typeof ev.data.rcMessageId === 'string' && ev.data.rcMessageId) o.rcMessageId = ev.data.rcMessageId;
    if (typeof ev.data.error === 'string' && ev.data.error) o.error = ev.data.error;
    o.timestamp = ev.time;
    return o;
  }
  return { type: 'sms_inbound', messageId: ev.subject, from: ev.data.from, to: ev.data.to, body: ev.data.body,
    rcMessageId: typeof ev.data.rcMessageId === 'string' ? ev.data.rcMessageId : null, tenantId: ev.tenant,
    timestamp: ev.time };
}

// ---------------------------------------------------------------- the seed client

// Runs the seed snippet in a context of its own: WebSocket is `ws` with recording listeners,
// console.log is captured, setTimeout is tracked so that stop() ends the reconnect loop.
function seedClient(key, srv = main) {
  const rec = { sockets: [], logs: [], stopped: false, timers: new Set() };
  class RecordingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      const me = { opened_at: 0, messages: [], close: null, error: null, ws: this };
      rec.sockets.push(me);
      this.addEventListener('open', () => { me.opened_at = Date.now(); });
      this.addEventListener('message', (e) => { me.messages.push(JSON.parse(String(e.data))); });
      this.addEventListener('close', (e) => { me.close = { code: e.code, reason: e.reason, at: Date.now() }; });
      this.on('error', (e) => { me.error = e.message; });  // browsers never throw
    }
  }
  const url = srv.base.replace('http://', 'ws://') + '/smsgw/ws';
  const code = SEED_TEXT.split(SEED_URL).join(url).split(SEED_KEY).join(key);
  check(code !== SEED_TEXT, 'seed literals replaced');
  const sandbox = {
    WebSocket: RecordingWebSocket,
    JSON, Math,
    console: { log: (...args) => rec.logs.push(args) },
    setTimeout: (fn, ms) => {
      if (rec.stopped) return 0;
      const t = setTimeout(() => { rec.timers.delete(t); if (!rec.stopped) fn(); }, ms);
      rec.timers.add(t);
      return t;
    },
  };
  vm.runInNewContext(code, sandbox, { filename: 'seed_client.js' });
  rec.events = () => rec.logs.filter((a) => a[0] === 'Event:').map((a) => a[1]);
  rec.current = () => rec.sockets[rec.sockets.length - 1];
  rec.authed = () => rec.sockets.some((s) => s.messages.some((m) => m.type === 'auth_ok'));
  rec.stop = () => {
    rec.stopped = true;
    for (const t of rec.timers) clearTimeout(t);
    for (const s of rec.sockets) try { s.ws.terminate(); } catch (e) { /* closed */ }
  };
  clients.push(rec);
  return rec;
}

// A bare ws client (for what the seed never does: bad first frames, tokens, silence).
function rawClient(opts = {}) {
  const url = main.base.replace('http://', 'ws://') + '/smsgw/ws';
  const ws = new WebSocket(url, opts);
  const r = { ws, messages: [], close: null, opened: false, opened_at: 0 };
  ws.on('open', () => { r.opened = true; r.opened_at = Date.now(); });
  ws.on('message', (d) => r.messages.push(String(d)));
  ws.on('close', (code, reason) => { r.close = { code, reason: String(reason), at: Date.now() }; });
  ws.on('error', () => {});
  r.ready = () => waitFor(() => r.opened, 5000, 'open');
  r.closed = (ms = 5000) => waitFor(() => r.close, ms, 'close');
  cleanups.push(() => ws.terminate());
  return r;
}

async function expectAuthError(r, text) {
  await r.closed();
  check(r.messages.length === 1, `one frame before the close, got ${JSON.stringify(r.messages)}`);
  check(r.messages[0] === JSON.stringify({ type: 'auth_error', error: text }), 'auth_error frame: ' + r.messages[0]);
  check(r.close.code === 1008 && r.close.reason === text, `close 1008 ${text}, got ${r.close.code} ${r.close.reason}`);
}

// ---------------------------------------------------------------- scenarios

async function s1_stream() {
  const c = seedClient(world.A.api_key);
  await waitFor(() => c.authed(), 5000, 'auth_ok');
  const first = c.current().messages[0];
  check(canon(first) === canon({ type: 'auth_ok' }), 'auth_ok first and bare: ' + JSON.stringify(first));
  const published = [];
  for (let i = 0; i < 10; i++) {
    if (i % 2 === 0) {
      const st = ['queued', 'sending', 'sent', 'failed'][(i / 2) % 4];
      const data = { status: st, to: '+15551234567', from: '+15559876543', body: 'Hello ' + i, userId: null };
      if (st === 'sent') data.rcMessageId = '9000' + i;
      if (st === 'failed') data.error = 'Number not SMS-enabled';
      published.push(await status('t1', world.A.id, newId(), data));
    } else {
      published.push(await inbound('t1', newId(), { from: '+15559876543', to: '+15551234567', body: 'Yes ' + i, rcMessageId: i === 3 ? '77' : null }));
    }
  }
  await waitFor(() => c.events().length >= published.length, 5000, 'every event logged');
  await sleep(200);
  const got = c.events();
  check(got.length === published.length, `exactly ${published.length} events, got ${got.length}`);
  for (let i = 0; i < got.length; i++)
    check(canon(got[i]) === canon(expected(published[i])), `event ${i}: ${JSON.stringify(got[i])} != ${JSON.stringify(expected(published[i]))}`);
  world.s1 = published;
  c.stop();
}

async function s2_scoping() {
  const who = { A: seedClient(world.A.api_key), B: seedClient(world.B.api_key), ADM: seedClient(world.ADM.api_key), C: seedClient(world.C.api_key) };
  await waitFor(() => Object.values(who).every((c) => c.authed()), 5000, 'four auth_ok');
  const sA = await status('t1', world.A.id, newId(), { status: 'queued' });
  const sB = await status('t1', world.B.id, newId(), { status: 'sent' });
  const in1 = await inbound('t1', newId(), { from: '+15550000001', to: '+15550000002', body: 'to t1' });
  const in2 = await inbound('t2', newId(), { from: '+15550000003', to: '+15550000004', body: 'to t2' });
  const sC = await status('t2', world.C.id, newId(), { status: 'sending' });
  // A native event of another type reaches nobody.
  await publish({ topic: '/sms/t1/other', type: 'probe', tenant: 't1', data: { x: 1 } });
  const inA = await inbound('t1', newId(), { from: '+15550000005', to: '+15550000006', body: 'names A' }, world.A.id);
  const want = { A: [sA, in1, inA], B: [sB, in1], C: [in2, sC], ADM: [sA, sB, in1, in2, sC, inA] };
  await waitFor(() => Object.keys(want).every((k) => who[k].events().length >= want[k].length), 5000, 'deliveries');
  await sleep(300);
  for (const k of ['A', 'B', 'C']) {
    check(canon(who[k].events()) === canon(want[k].map(expected)), `${k} got ${JSON.stringify(who[k].events())}`);
  }
  // Admin: everything, in order per tenant.
  const adm = who.ADM.events();
  check(adm.length === 6, 'admin gets 6, got ' + adm.length);
  for (const t of ['t1', 't2']) {
    const mine = want.ADM.filter((e) => e.tenant === t).map(expected);
    check(canon(adm.filter((e) => e.tenantId === t)) === canon(mine), 'admin order in ' + t);
  }
  Object.values(who).forEach((c) => c.stop());
}

async function s3_wrong_key_until_blocked() {
  const srv = await startServer({ HERALD_SMSGW_AUTH_FAIL_LIMIT: '4' }, tempDir());
  const c = seedClient('sgw_' + '0'.repeat(32), srv);
  await waitFor(() => c.sockets.filter((s) => s.close).length >= 5, 15000, 'five refusals');
  c.stop();
  const closes = c.sockets.filter((s) => s.close);
  for (let i = 0; i < 5; i++) {
    const text = i < 4 ? 'Invalid API key' : 'Too many requests';
    const s = closes[i];
    check(canon(s.messages) === canon([{ type: 'auth_error', error: text }]), `attempt ${i}: ${JSON.stringify(s.messages)}`);
    check(s.close.code === 1008 && s.close.reason === text, `attempt ${i} close ${s.close.code} ${s.close.reason}`);
  }
  // onopen resets the delay: the client retries about once a second.
  for (let i = 1; i < 5; i++) {
    const gap = closes[i].opened_at - closes[i - 1].close.at;
    check(gap >= 900 && gap < 1800, `retry ${i} after ${gap} ms`);
  }
  // The same block on REST, valid key or not; and send is off by default (501).
  const base = srv.base + '/smsgw';
  const r = await http('GET', base + '/v1/sms/messages', undefined, { Authorization: 'Bearer x' });
  check(r.status === 429 && r.json.error === 'Too many requests' && Number(r.headers.get('retry-after')) >= 1, 'blocked REST: ' + r.status);
  stop(srv.child);
  const srv2 = await startServer({}, tempDir());
  await admin(srv2, 'POST', '/v1/admin/tenants', { id: 't1' });
  const a = await admin(srv2, 'POST', '/v1/admin/apps', { tenant: 't1', name: 'a', role: 'app', api_key_format: 'sgw' });
  const s = await http('POST', srv2.base + '/smsgw/v1/sms/send', '{}', { Authorization: 'Bearer ' + a.api_key });
  check(s.status === 501 && s.json.error === 'Sending is not enabled on this gateway', 'send off: ' + s.status + ' ' + s.text);
  stop(srv2.child);
  // Disabled: no path is served, but the publish rules of sms.* still hold (design.md §3).
  const srv3 = await startServer({ HERALD_SMSGW_ENABLED: 'false' }, tempDir());
  await admin(srv3, 'POST', '/v1/admin/tenants', { id: 't1' });
  const p = await admin(srv3, 'POST', '/v1/admin/apps', { tenant: 't1', name: 'p', role: 'publisher' });
  const h = await http('GET', srv3.base + '/smsgw/health');
  check(h.status === 404, 'disabled: /smsgw/health is ' + h.status);
  const ev = { topic: '/sms/t1/inbound', type: 'sms.inbound', tenant: 't1', subject: 'not-a-msg-id', data: {} };
  const x = await http('POST', srv3.base + '/v1/events', JSON.stringify(ev), { Authorization: 'Bearer ' + p.api_key });
  check(x.status === 400 && x.json.error.code === 'bad_message', 'disabled: validator still runs: ' + x.status + ' ' + x.text);
  stop(srv3.child);
}

async function s4_auth_timeout() {
  const r = rawClient();
  await r.ready();
  await r.closed((AUTH_TIMEOUT_S + 2) * 1000);
  const took = r.close.at - r.opened_at;
  check(took >= AUTH_TIMEOUT_S * 1000 - 100 && took <= AUTH_TIMEOUT_S * 1000 + 1000, 'closed after ' + took + ' ms');
  check(r.messages.length === 1 && r.messages[0] === '{"type":"auth_error","error":"Authentication timeout"}', 'frame ' + r.messages);
  check(r.close.code === 1008 && r.close.reason === 'Authentication timeout', 'close ' + r.close.code);
}

async function s5_first_frames() {
  const bad = rawClient();
  await bad.ready();
  bad.ws.send('{nope');
  await expectAuthError(bad, 'Invalid JSON');
  const bin = rawClient();
  await bin.ready();
  bin.ws.send(Buffer.from('{"type":"auth"}'), { binary: true });
  await expectAuthError(bin, 'Invalid JSON');
  const hello = rawClient();
  await hello.ready();
  hello.ws.send('{"type":"hello"}');
  await expectAuthError(hello, 'Send auth first');
  const nokey = rawClient();
  await nokey.ready();
  nokey.ws.send('{"type":"auth","apiKey":42}');
  await expectAuthError(nokey, 'Invalid API key');
  const pub = rawClient();
  await pub.ready();
  pub.ws.send(JSON.stringify({ type: 'auth', apiKey: world.PUBR.api_key }));
  await expectAuthError(pub, 'API key not permitted');
  const big = rawClient();
  await big.ready();
  big.ws.send(JSON.stringify({ type: 'auth', apiKey: 'x'.repeat(5000) }));
  await big.closed();
  check(big.close.code === 1009 && big.messages.length === 0, 'oversized auth frame: ' + big.close.code);
  // After auth: ping answered, everything else ignored, a flood closed.
  const ok = rawClient();
  await ok.ready();
  ok.ws.send(JSON.stringify({ type: 'auth', apiKey: world.B.api_key }));
  await waitFor(() => ok.messages.includes('{"type":"auth_ok"}'), 3000, 'auth_ok');
  ok.ws.send('{"type":"auth","apiKey":"again"}');
  ok.ws.send('not json');
  ok.ws.send('{"type":"ping"}');
  await waitFor(() => ok.messages.includes('{"type":"pong"}'), 3000, 'pong');
  check(!ok.close, 'still open');
  for (let i = 0; i < 80; i++) ok.ws.send('{}');
  await ok.closed();
  check(ok.close.code === 1008 && ok.close.reason === 'Too many messages', 'flood: ' + ok.close.code + ' ' + ok.close.reason);
  // Too many connections per key (default 50).
  const held = [];
  for (let i = 0; i < 50; i++) {
    const h = rawClient();
    held.push(h);
    await h.ready();
    h.ws.send(JSON.stringify({ type: 'auth', apiKey: world.CONN.api_key }));
  }
  await waitFor(() => held.every((h) => h.messages.includes('{"type":"auth_ok"}')), 10000, '50 auth_ok');
  const extra = rawClient();
  await extra.ready();
  extra.ws.send(JSON.stringify({ type: 'auth', apiKey: world.CONN.api_key }));
  await expectAuthError(extra, 'Too many connections');
  held.forEach((h) => h.ws.terminate());
  // Rotation kills the old key at once: API key revoked within 1 s.
  const rev = rawClient();
  await rev.ready();
  rev.ws.send(JSON.stringify({ type: 'auth', apiKey: world.REV.api_key }));
  await waitFor(() => rev.messages.includes('{"type":"auth_ok"}'), 3000, 'auth_ok');
  const t0 = Date.now();
  await admin(main, 'POST', `/v1/admin/apps/${world.REV.id}/rotate-key`, {});
  await rev.closed(2000);
  check(rev.close.at - t0 <= 1000, 'revoked within 1 s');
  check(rev.messages[rev.messages.length - 1] === '{"type":"auth_error","error":"API key revoked"}', 'revoked frame');
  check(rev.close.code === 1008 && rev.close.reason === 'API key revoked', 'revoked close');
}

async function s6_ws_token() {
  const t = await rest('POST', '/v1/ws/token', world.A.api_key);
  check(t.status === 200 && /^wst_[0-9a-f]{64}$/.test(t.json.token) && t.json.expiresIn === WS_TOKEN_TTL_S, 'token: ' + t.text);
  const a = rawClient();
  await a.ready();
  a.ws.send(JSON.stringify({ type: 'auth', token: t.json.token }));
  await waitFor(() => a.messages.includes('{"type":"auth_ok"}'), 3000, 'auth_ok with a token');
  const again = rawClient();
  await again.ready();
  again.ws.send(JSON.stringify({ type: 'auth', token: t.json.token }));
  await expectAuthError(again, 'Invalid API key');
  const t2 = await rest('POST', '/v1/ws/token', world.A.api_key);
  await sleep(WS_TOKEN_TTL_S * 1000 + 300);
  const late = rawClient();
  await late.ready();
  late.ws.send(JSON.stringify({ type: 'auth', token: t2.json.token }));
  await expectAuthError(late, 'Invalid API key');
  check(!a.close, 'the socket outlives its token');
  a.ws.close();
}

async function s7_heartbeat() {
  const c = seedClient(world.B.api_key);
  await waitFor(() => c.authed(), 5000, 'auth_ok');
  await sleep(PING_S * 1000 * 3 + 300);
  const pings = c.current().messages.filter((m) => m.type === 'ping').length;
  check(pings >= 2 && pings <= 4, 'pings in 3.3 intervals: ' + pings);
  check(!c.current().close && c.sockets.length === 1, 'a client that answers stays');
  c.stop();
  // A client that answers no control ping (and says nothing) is closed 4008.
  const mute = rawClient({ autoPong: false });
  await mute.ready();
  const tm = Date.now();
  mute.ws.send(JSON.stringify({ type: 'auth', apiKey: world.B.api_key }));
  await mute.closed((LIVENESS_S + 3) * 1000);
  check(mute.close.code === 4008, 'silent client: ' + mute.close.code);
  check(mute.close.at - tm >= LIVENESS_S * 1000 - 100, 'not before liveness_timeout');
}

async function s9_rest() {
  const A = world.A.api_key, B = world.B.api_key, C = world.C.api_key, ADM = world.ADM.api_key;
  // Records.
  const sent = world.s1.find((e) => e.data.status === 'sent');
  const r = await rest('GET', '/v1/sms/status/' + sent.subject, A);
  check(r.status === 200, 'status: ' + r.text);
  check(canon(r.json) === canon({ messageId: sent.subject, direction: 'outbound', status: 'sent', to: sent.data.to,
    from: sent.data.from, body: sent.data.body, rcMessageId: sent.data.rcMessageId, error: null, appId: world.A.id,
    tenantId: 't1', userId: null, createdAt: sent.time, updatedAt: sent.time }), 'record: ' + r.text);
  const inb = world.s1.find((e) => e.type === 'sms.inbound');
  const ri = await rest('GET', '/v1/sms/status/' + inb.subject, B);
  check(ri.status === 200 && ri.json.direction === 'inbound' && ri.json.status === 'received' && ri.json.appId === null, 'inbound record');
  // createdAt stays, updatedAt moves.
  const id = newId();
  const e1 = await status('t1', world.A.id, id, { status: 'queued', to: '+15551230000', from: '+15559870000', body: 'x' });
  await sleep(15);
  const e2 = await status('t1', world.A.id, id, { status: 'sent', to: '+15551230000', from: '+15559870000', body: 'x', rcMessageId: '5' });
  const rr = await rest('GET', '/v1/sms/status/' + id, A);
  check(rr.json.createdAt === e1.time && rr.json.updatedAt === e2.time && rr.json.status === 'sent', 'times: ' + rr.text);
  // Scoping: 404 across apps and tenants; admin sees all (?tenant=).
  check((await rest('GET', '/v1/sms/status/' + sent.subject, B)).status === 404, 'B reads A');
  check((await rest('GET', '/v1/sms/status/' + inb.subject, C)).status === 404, 'C reads t1');
  check((await rest('GET', '/v1/sms/status/' + sent.subject, ADM)).status === 200, 'admin');
  check((await rest('GET', '/v1/sms/status/' + sent.subject + '?tenant=t2', ADM)).status === 404, 'admin wrong tenant');
  check((await rest('GET', '/v1/sms/status/' + sent.subject + '?tenant=t1', ADM)).status === 200, 'admin tenant');
  const listB = await rest('GET', '/v1/sms/messages?limit=100', B);
  check(listB.json.messages.every((m) => m.tenantId === 't1' && (m.appId === null || m.appId === world.B.id)), 'B list scoped');
  const listC = await rest('GET', '/v1/sms/messages?limit=100', C);
  check(listC.json.messages.every((m) => m.tenantId === 't2'), 'C list scoped');
  // Filters.
  const inOnly = await rest('GET', '/v1/sms/messages?direction=inbound&limit=100', A);
  check(inOnly.json.messages.length > 0 && inOnly.json.messages.every((m) => m.direction === 'inbound'), 'direction');
  const failed = await rest('GET', '/v1/sms/messages?status=failed&limit=100', A);
  check(failed.json.messages.length > 0 && failed.json.messages.every((m) => m.status === 'failed'), 'status filter');
  const future = await rest('GET', '/v1/sms/messages?startDate=2100-01-01', A);
  check(future.status === 200 && future.json.messages.length === 0 && future.json.nextCursor === null, 'startDate');
  const past = await rest('GET', '/v1/sms/messages?endDate=2000-01-01T00:00:00Z', A);
  check(past.json.messages.length === 0, 'endDate');
  // Paging while messages arrive: no duplicate, no hole; newest first.
  const before = (await rest('GET', '/v1/sms/messages?limit=100', A)).json.messages.map((m) => m.messageId);
  const seen = [];
  let cursor = null;
  let n = 0;
  do {
    const q = '/v1/sms/messages?limit=2' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
    const p = await rest('GET', q, A);
    check(p.status === 200, 'page: ' + p.text);
    for (let i = 1; i < p.json.messages.length; i++)
      check(p.json.messages[i - 1].createdAt >= p.json.messages[i].createdAt, 'newest first');
    seen.push(...p.json.messages.map((m) => m.messageId));
    cursor = p.json.nextCursor;
    if (n++ < 3) await status('t1', world.A.id, newId(), { status: 'queued' });  // arrives meanwhile
  } while (cursor);
  check(new Set(seen).size === seen.length, 'no duplicate');
  check(canon(seen) === canon(before), 'no hole: ' + seen.length + ' vs ' + before.length);
  // Texts.
  const texts = [
    ['/v1/sms/status/bad-id', 400, 'Invalid messageId format'],
    ['/v1/sms/status/msg_doesnotexist', 404, 'Message not found'],
    ['/v1/sms/messages?startDate=yesterday', 400, 'Invalid startDate'],
    ['/v1/sms/messages?endDate=2026-13-45', 400, 'Invalid endDate'],
    ['/v1/sms/messages?startDate=2026-03-02&endDate=2026-03-01', 400, 'startDate must be before endDate'],
    ['/v1/sms/messages?status=delivered', 400, 'Invalid status'],
    ['/v1/sms/messages?direction=up', 400, 'Invalid direction'],
    ['/v1/sms/messages?limit=0', 400, 'limit must be 1-100'],
    ['/v1/sms/messages?limit=101', 400, 'limit must be 1-100'],
    ['/v1/sms/messages?cursor=garbage', 400, 'Invalid cursor'],
    ['/v1/nothing', 404, 'Not found'],
  ];
  for (const [p, st, text] of texts) {
    const x = await rest('GET', p, A);
    check(x.status === st && canon(x.json) === canon({ error: text }), `${p}: ${x.status} ${x.text}`);
  }
  // A cursor of another query is refused.
  const p1 = await rest('GET', '/v1/sms/messages?limit=1', A);
  const other = await rest('GET', '/v1/sms/messages?limit=2&cursor=' + encodeURIComponent(p1.json.nextCursor), A);
  check(other.status === 400 && other.json.error === 'Invalid cursor', 'cursor of another query');
  const auth = [
    [{}, 401, 'Missing or invalid API key'],
    [{ Authorization: 'Basic abc' }, 401, 'Missing or invalid API key'],
    [{ Authorization: 'Bearer sgw_' + '1'.repeat(32) }, 401, 'Invalid API key'],
    [{ 'X-API-Key': 'sgw_' + '2'.repeat(32) }, 401, 'Invalid API key'],
    [{ Authorization: 'Bearer ' + world.PUBR.api_key }, 403, 'API key not permitted'],
  ];
  for (const [h, st, text] of auth) {
    const x = await http('GET', main.base + '/smsgw/v1/sms/messages', undefined, h);
    check(x.status === st && x.json && x.json.error === text, `${JSON.stringify(h)}: ${x.status} ${x.text}`);
  }
  const xk = await http('GET', main.base + '/smsgw/v1/sms/messages', undefined, { 'X-API-Key': A });
  check(xk.status === 200, 'X-API-Key works');
  const m405 = await rest('DELETE', '/v1/sms/messages', A);
  check(m405.status === 405 && m405.json.error === 'Method not allowed' && /GET/.test(m405.headers.get('allow') || ''), '405: ' + m405.status);
  const big = await rest('POST', '/v1/sms/send', A, JSON.stringify({ to: '+15551234567', from: '+15559876543', body: 'x'.repeat(110 * 1024) }));
  check(big.status === 413 && big.json.error === 'Payload too large', '413: ' + big.status + ' ' + big.text.slice(0, 80));
  const health = await http('GET', main.base + '/smsgw/health');
  check(health.status === 200 && canon(health.json) === canon({ status: 'ok' }), 'health');
  // X-Request-Id: echoed when well-formed, else a UUID v4.
  const rid = await rest('GET', '/v1/sms/messages', A, undefined, { 'X-Request-Id': 'abc.DEF_1-2' });
  check(rid.headers.get('x-request-id') === 'abc.DEF_1-2', 'request id echoed');
  const rid2 = await rest('GET', '/v1/sms/messages', A, undefined, { 'X-Request-Id': 'bad id!' });
  check(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(rid2.headers.get('x-request-id') || ''), 'fresh uuid');
  // Rate limit: 100 requests per app key per window, then 429 with Retry-After.
  for (let i = 0; i < 100; i++) {
    const x = await rest('GET', '/v1/sms/messages?limit=1', world.RL.api_key);
    check(x.status === 200, 'request ' + i + ': ' + x.status);
  }
  const over = await rest('GET', '/v1/sms/messages?limit=1', world.RL.api_key);
  check(over.status === 429 && over.json.error === 'Too many requests' && Number(over.headers.get('retry-after')) >= 1, 'over the limit: ' + over.status);
  // Native publishes breaking §4.1.
  const bads = [
    [{ topic: '/sms/t1/status', type: 'sms.status', tenant: 't1', app: world.A.id, subject: 'nope', retain: true, data: { status: 'sent' } }, 400, 'subject'],
    [{ topic: '/sms/t1/status', type: 'sms.status', tenant: 't1', app: world.A.id, subject: newId(), data: { status: 'sent' } }, 400, 'retain'],
    [{ topic: '/sms/t1/status', type: 'sms.status', tenant: 't1', subject: newId(), retain: true, data: { status: 'sent' } }, 400, 'app'],
    [{ topic: '/sms/t1/status', type: 'sms.status', tenant: 't1', app: world.A.id, subject: newId(), retain: true, data: { status: 'delivered' } }, 400, 'data.status'],
    [{ topic: '/sms/t1/status', type: 'sms.status', tenant: 't1', app: world.A.id, subject: newId(), retain: true, data: { status: 'failed' } }, 400, 'data.error'],
    [{ topic: '/sms/t1/inbound', type: 'sms.inbound', tenant: 't1', subject: newId(), retain: true, data: { from: '+1', to: '+2' } }, 400, 'data.body'],
    [{ topic: '/sms/t1/status', type: 'sms.status', tenant: 't1', app: world.B.id, subject: sent.subject, retain: true, data: { status: 'sent' } }, 409, 'messageId already in use'],
    [{ topic: '/sms/t1/inbound', type: 'sms.inbound', tenant: 't1', subject: sent.subject, retain: true, data: { from: '+1', to: '+2', body: 'b' } }, 409, 'messageId already in use'],
  ];
  for (const [ev, st, field] of bads) {
    const x = await publishRaw(ev);
    const code = st === 400 ? 'bad_message' : 'conflict';
    check(x.status === st && x.json.error && x.json.error.code === code && x.json.error.message.includes(field),
      `publish ${field}: ${x.status} ${x.text}`);
  }
}

async function s10_send() {
  const c = seedClient(world.A.api_key);
  await waitFor(() => c.authed(), 5000, 'auth_ok');
  const body = JSON.stringify({ to: '+15551234567', from: '+15559876543', body: 'Hello from send', userId: 'u1' });
  const r = await rest('POST', '/v1/sms/send', world.A.api_key, body, { 'Idempotency-Key': 'k1', 'Content-Type': 'application/json' });
  check(r.status === 202 && /^msg_[0-9a-f]{12}$/.test(r.json.messageId) && r.json.status === 'queued', 'send: ' + r.status + ' ' + r.text);
  await waitFor(() => c.events().some((e) => e.messageId === r.json.messageId), 3000, 'queued frame');
  const ev = c.events().find((e) => e.messageId === r.json.messageId);
  check(ev.type === 'sms_status' && ev.status === 'queued' && ev.appId === world.A.id && ev.tenantId === 't1', 'queued frame: ' + JSON.stringify(ev));
  const again = await rest('POST', '/v1/sms/send', world.A.api_key, body, { 'Idempotency-Key': 'k1' });
  check(again.status === 202 && again.json.messageId === r.json.messageId, 'idempotent retry');
  const rec = await rest('GET', '/v1/sms/status/' + r.json.messageId, world.A.api_key);
  check(rec.json.status === 'queued' && rec.json.userId === 'u1' && rec.json.body === 'Hello from send', 'record of a sent message');
  const texts = [
    ['{"to":"+15551234567","body":"x"}', 'to, from, and body are required'],
    ['{"to":"5551234567","from":"+15559876543","body":"x"}', 'to and from must be valid E.164 phone numbers'],
    [JSON.stringify({ to: '+15551234567', from: '+15559876543', body: 'é'.repeat(1601) }), 'body must be 1-1600 characters'],
    ['{"to":', 'Invalid JSON body'],
  ];
  for (const [b, text] of texts) {
    const x = await rest('POST', '/v1/sms/send', world.A.api_key, b);
    check(x.status === 400 && x.json.error === text, `send ${text}: ${x.status} ${x.text}`);
  }
  const okLen = await rest('POST', '/v1/sms/send', world.A.api_key, JSON.stringify({ to: '+15551234567', from: '+15559876543', body: 'é'.repeat(1600) }));
  check(okLen.status === 202, '1600 code points are fine');
  c.stop();
}

async function s8_restart() {
  const c = seedClient(world.A.api_key);
  await waitFor(() => c.authed(), 5000, 'auth_ok');
  await sleep(50);
  const drop = new Date(Date.now() - 1000).toISOString();
  stop(main.child);
  await waitFor(() => c.sockets[0].close, 5000, 'the drain close');
  check(c.sockets[0].close.code === 1012, 'client sees 1012, got ' + c.sockets[0].close.code);
  await new Promise((res) => (main.child.exitCode !== null ? res() : main.child.on('exit', res)));
  // Restart once the client has failed to reconnect: it is in its (2 s) backoff now.
  await waitFor(() => c.sockets.length >= 2 && c.sockets[1].close, 5000, 'a failed reconnect');
  main = await startServer(main.env, main.data, '127.0.0.1:' + main.port);
  const missed = await status('t1', world.A.id, newId(), { status: 'sent', rcMessageId: '4242', to: '+15551234567', from: '+15559876543', body: 'while away' });
  check(!c.authed() || c.sockets.filter((s) => s.messages.some((m) => m.type === 'auth_ok')).length === 1, 'published during the backoff');
  await waitFor(() => c.current().messages.some((m) => m.type === 'auth_ok') && c.sockets.length > 2, 35000, 'reconnected');
  const live = await status('t1', world.A.id, newId(), { status: 'queued' });
  await waitFor(() => c.events().some((e) => e.messageId === live.subject), 3000, 'live event after the restart');
  check(!c.events().some((e) => e.messageId === missed.subject), 'nothing is replayed');
  const list = await rest('GET', '/v1/sms/messages?limit=100&startDate=' + encodeURIComponent(drop), world.A.api_key);
  check(list.status === 200 && list.json.messages.some((m) => m.messageId === missed.subject && m.status === 'sent'), 'missed message listed: ' + list.text.slice(0, 200));
  const st = await rest('GET', '/v1/sms/status/' + missed.subject, world.A.api_key);
  check(st.status === 200 && st.json.status === 'sent' && st.json.rcMessageId === '4242', 'missed status');
  c.stop();
}

// ---------------------------------------------------------------- main

const scenarios = [
  ['1 auth_ok first; interleaved events logged as rendered, in order', s1_stream],
  ['2 scoping (apps, tenants, admin; other types never)', s2_scoping],
  ['4 auth timeout', s4_auth_timeout],
  ['5 first-frame errors, after-auth frames, flood, connections per key, revoke', s5_first_frames],
  ['6 ws token once; reuse and expiry refused', s6_ws_token],
  ['7 heartbeat pings; silent client 4008', s7_heartbeat],
  ['9 REST records, scoping, filters, paging, texts, limits, publish rules', s9_rest],
  ['10 send (enabled): 202, queued frame, idempotent, texts', s10_send],
  ['8 restart: 1012, backoff, live events after, gap over REST', s8_restart],
  ['3 wrong key retried ~1/s until blocked (Too many requests); send off 501; disabled', s3_wrong_key_until_blocked],
];

async function main_() {
  trapCrashes(log);
  const deadline = setTimeout(() => { log('FAIL: suite deadline passed'); finish(1); }, DEADLINE_MS);
  try {
    main = await startServer({
      HERALD_SMSGW_PING_INTERVAL: String(PING_S), HERALD_SMSGW_LIVENESS_TIMEOUT: String(LIVENESS_S),
      HERALD_SMSGW_AUTH_TIMEOUT: String(AUTH_TIMEOUT_S), HERALD_SMSGW_WS_TOKEN_TTL: String(WS_TOKEN_TTL_S),
      HERALD_SMSGW_SEND_ENABLED: 'true', HERALD_SMSGW_AUTH_FAIL_LIMIT: '1000',
    }, tempDir());
    log('herald at ' + main.base);
    await setUp(main);
  } catch (e) {
    log('FAIL: set-up: ' + e.message);
    return finish(1);
  }
  const only = process.env.SMSGW_COMPAT_ONLY ? process.env.SMSGW_COMPAT_ONLY.split(',') : null;
  const failed = await runScenarios(scenarios, only, log);
  clearTimeout(deadline);
  return finish(failed);
}

async function finish(code) {
  for (const c of clients) c.stop();
  for (const s of servers) stop(s);
  await Promise.all(servers.map((s) => (s.exitCode !== null ? null : new Promise((res) => {
    s.on('exit', res);
    setTimeout(res, 6000).unref();
  }))));
  for (const c of cleanups.splice(0).reverse()) { try { await c(); } catch (e) { /* best effort */ } }
  setTimeout(() => process.exit(code), 100);
}

main_();
