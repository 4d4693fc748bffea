#!/usr/bin/env node
// Compatibility suite of ringcentral.md §9: drives RingCentral's own, unmodified WebSocket client
// (@rc-ex/core 1.8.6 + @rc-ex/ws 1.4.2, pinned by package-lock.json) against a Herald started
// here on 127.0.0.1:0 with an in-memory store. Tenants, apps, users and JWTs are set up through
// the admin API; events are published natively. The client is only configured through its
// documented options and observed through its documented events (newWebSocketObject, ...);
// nothing in it is patched. Each scenario prints PASS or FAIL; the exit code is the number of
// failures (0: all passed). Loopback only; the server is stopped by its PID.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const RingCentral = require('@rc-ex/core').default;
const WebSocketExtension = require('@rc-ex/ws').default;
const { Events } = require('@rc-ex/ws');
const WebSocket = require('ws');
const { sleep, check, waitFor, startHerald, http, trapCrashes, runScenarios } = require('./harness');

const HERALD_BIN = process.env.HERALD_BIN || path.resolve(__dirname, '../../../build/release/herald');
const ADMIN_KEY = process.env.HERALD_ADMIN_KEY || 'hka_compat_' + crypto.randomBytes(12).toString('hex');
const RECOVERY_TIMEOUT_S = 4;      // short, for scenario 4
const MAX_CONN_PER_SESSION = 5;    // small, for scenario 10
const DEADLINE_MS = 110000;        // the whole suite, server start included

let server = null;
let base = '';
let proxy = null;  // in front of herald: core.public_url names it (see startServer)
const cleanups = [];

function log(...a) { console.log(...a); }

// ---------------------------------------------------------------- server and admin set-up

function startServer(publicUrl) {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-rc-compat-'));
  cleanups.push(() => fs.rmSync(data, { recursive: true, force: true }));
  const env = {
    HERALD_ADMIN_KEY: ADMIN_KEY,
    HERALD_RINGCENTRAL_RECOVERY_TIMEOUT: String(RECOVERY_TIMEOUT_S),
    HERALD_RINGCENTRAL_MAX_CONNECTIONS_PER_SESSION: String(MAX_CONN_PER_SESSION),
    // The ws token's `uri` names core.public_url (never the Host header, issue 13): the proxy
    // in front, so that the client's sockets go through it (s4 holds its reconnects there).
    HERALD_CORE_PUBLIC_URL: publicUrl,
  };
  return startHerald({ bin: HERALD_BIN, env, data, startMs: 10000, onChild: (c) => { server = c; } })
    .then((s) => s.base);
}

function stopServer() {
  if (server && server.exitCode === null) {
    try { process.kill(server.pid, 'SIGTERM'); } catch (e) { /* gone */ }
    const pid = server.pid;
    setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch (e) { /* gone */ } }, 5000).unref();
  }
}

async function admin(method, p, body) {
  const r = await http(method, base + p, body === undefined ? undefined : JSON.stringify(body),
    { Authorization: 'Bearer ' + ADMIN_KEY, 'Content-Type': 'application/json' });
  if (r.status >= 300) throw new Error(`admin ${method} ${p}: ${r.status} ${r.text}`);
  return r.json;
}

const world = {};

async function setUp() {
  await admin('POST', '/v1/admin/tenants', { id: '4100' });
  await admin('POST', '/v1/admin/tenants', { id: '4200' });
  world.app = await admin('POST', '/v1/admin/apps', { tenant: '4100', name: 'rc-client', role: 'app' });
  world.pub = await admin('POST', '/v1/admin/apps', { tenant: '4100', name: 'pub', role: 'publisher' });
  world.pub2 = await admin('POST', '/v1/admin/apps', { tenant: '4200', name: 'pub2', role: 'publisher' });
  world.users = {};
  // One extension per scenario keeps their topics apart.
  const mk = async (login, ext, extra = {}) => {
    const u = await admin('POST', '/v1/admin/users',
      { tenant: '4100', login, password: 'pw-' + login, extension_id: ext, extension_number: 'x' + ext, ...extra });
    const j = await admin('POST', `/v1/admin/users/${u.id}/jwt`, {});
    world.users[login] = { ...u, password: 'pw-' + login, jwt: j.jwt, jti: j.jti };
    return world.users[login];
  };
  for (const [login, ext] of [['alice', '101'], ['bob', '102'], ['s2', '201'], ['s3', '301'],
    ['s4', '401'], ['s5', '501'], ['s6', '601'], ['s7', '701'], ['s9', '901'], ['s10', '1001']])
    await mk(login, ext);
  await mk('carol', '103', { admin: true });
  // The same login and extension id in another tenant.
  await admin('POST', '/v1/admin/users', { tenant: '4200', login: 'alice', password: 'other', extension_id: '101' });
}

function topicOf(ext, tenant = '4100') { return `/restapi/v1.0/account/${tenant}/extension/${ext}/message-store`; }
const OWN = '/restapi/v1.0/account/~/extension/~/message-store';

let seqNo = 0;
// Publishes natively; `data` is sent as the exact text given. Returns the event id.
async function publish(topic, dataText, key = world.pub.api_key) {
  const body = `{"topic":${JSON.stringify(topic)},"type":"message-store","data":${dataText}}`;
  const r = await http('POST', base + '/v1/events', body,
    { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' });
  if (r.status !== 201) throw new Error('publish: ' + r.status + ' ' + r.text);
  return r.json.events[0].id;
}
function dataText(n) { return `{ "n" : ${n},"seq":${++seqNo} , "pad":"é\\u00e9 x",  "f":1.50 }`; }

// ---------------------------------------------------------------- client helpers

function newRc(server = base + '/ringcentral') {
  return new RingCentral({ server, clientId: world.app.client_id, clientSecret: world.app.client_secret });
}

// A logged-in client with a WebSocketExtension; raw inbound frames and socket URLs recorded
// through the extension's documented newWebSocketObject event.
async function connect(user, { server, wsOptions } = {}) {
  const rc = newRc(server);
  await rc.authorize({ jwt: user.jwt });
  const ws = new WebSocketExtension(wsOptions || {});
  const rec = { raw: [], urls: [], sent: [], sockets: [] };
  ws.eventEmitter.on(Events.newWebSocketObject, (sock) => {
    rec.urls.push(sock.url);
    rec.sockets.push(sock);
    const index = rec.sockets.length - 1;
    rec.opened = rec.opened || [];
    rec.opened.push(Date.now());
    rec.tagged = rec.tagged || [];
    sock.addEventListener('message', (e) => {
      rec.raw.push(String(e.data));
      rec.tagged.push({ index, t: Date.now(), text: String(e.data) });
    });
    const send = sock.send.bind(sock);
    sock.send = (s, ...rest) => { rec.sent.push(String(s)); return send(s, ...rest); };
  });
  await rc.installExtension(ws);
  const teardown = async () => {
    try { await rc.revoke(); } catch (e) { /* best effort */ }
    try { ws.ws && ws.ws.terminate(); } catch (e) { /* gone */ }
  };
  cleanups.push(teardown);
  return { rc, ws, rec, teardown };
}

function frames(rec, type) {
  return rec.raw.map((t) => ({ text: t, msg: JSON.parse(t) })).filter((f) => f.msg[0].type === type);
}

// Every published event received, once, in order. `explained(uuid)` may excuse a duplicate that
// the client itself caused (see s9_races).
function checkStream(got, published, what, explained = () => false) {
  let ids = got.map((e) => e.uuid);
  const dups = ids.filter((id, i) => ids.indexOf(id) !== i);
  for (const dup of dups) {
    if (!explained(dup))
      throw new Error(`${what}: duplicate events (${dup} at ${ids.indexOf(dup)} and ${ids.lastIndexOf(dup)} of ${ids.length})`);
  }
  ids = ids.filter((id, i) => ids.indexOf(id) === i);
  const want = published.map((p) => p.id);
  const missing = want.filter((id) => !ids.includes(id));
  check(missing.length === 0, `${what}: ${missing.length} of ${want.length} events missing`);
  const order = ids.filter((id) => want.includes(id));
  check(JSON.stringify(order) === JSON.stringify(want), `${what}: events out of order`);
}

// A TCP proxy whose new connections can be held (not forwarded) for a while. `targetPort` may
// be a function: the proxy is started before herald, whose port is known only later.
function startProxy(targetPort) {
  const state = { paused: false, waiting: [], sockets: new Set() };
  const srv = net.createServer((client) => {
    state.sockets.add(client);
    const go = () => {
      const up = net.connect(typeof targetPort === 'function' ? targetPort() : targetPort, '127.0.0.1');
      state.sockets.add(up);
      const kill = () => { client.destroy(); up.destroy(); };
      client.on('error', kill); up.on('error', kill); client.on('close', kill); up.on('close', kill);
      client.pipe(up); up.pipe(client);
    };
    client.on('error', () => client.destroy());
    if (state.paused) state.waiting.push(go); else go();
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    cleanups.push(() => { srv.close(); for (const s of state.sockets) s.destroy(); });
    resolve({
      url: `http://127.0.0.1:${srv.address().port}`,
      pause() { state.paused = true; },
      resume() { state.paused = false; for (const go of state.waiting.splice(0)) go(); },
    });
  }));
}

// A raw socket (the `ws` package, as the client uses): every frame and the close code.
function rawSocket(url) {
  return new Promise((resolve) => {
    const s = new WebSocket(url);
    const out = { opened: false, frames: [], close: null, httpError: null, sock: s };
    s.on('open', () => { out.opened = true; });
    s.on('message', (d) => out.frames.push(JSON.parse(String(d))));
    s.on('unexpected-response', (req, res) => { out.httpError = res.statusCode; resolve(out); });
    s.on('error', () => {});
    s.on('close', (code) => { out.close = code; resolve(out); });
    setTimeout(() => resolve(out), 5000);
  });
}

async function wsTokenOf(rc) {
  return (await rc.post('/restapi/oauth/wstoken')).data;
}

// ---------------------------------------------------------------- scenarios

async function s1_login() {
  const alice = world.users.alice;
  let rc = newRc();
  let t = await rc.getToken({ grant_type: 'password', username: 'alice', extension: 'x101', password: alice.password });
  check(t.owner_id === '101', 'password+extension: owner_id ' + t.owner_id);
  check(t.token_type === 'bearer' && t.expires_in > 60 && t.refresh_token_expires_in > 0 && t.session_id, 'token reply fields');
  rc = newRc();
  t = await rc.getToken({ grant_type: 'password', username: 'alice*x101', password: alice.password });
  check(t.owner_id === '101', 'login*ext: owner_id ' + t.owner_id);
  rc = newRc();
  t = await rc.authorize({ jwt: alice.jwt });
  check(t.owner_id === '101', 'jwt: owner_id ' + t.owner_id);
  const ext = await rc.get('/restapi/v1.0/account/~/extension/~');
  check(ext.data.id === '101' && ext.data.account.id === '4100', 'extension info');
  const r2 = await rc.refresh();
  check(r2.owner_id === '101' && r2.session_id === t.session_id, 'refresh continues the login session');
  const expectGrantError = async (fn, what) => {
    try { await fn(); } catch (e) {
      check(e.response && e.response.status === 400 && e.response.data.error === 'invalid_grant',
        what + ': ' + (e.response ? e.response.status + ' ' + JSON.stringify(e.response.data) : e.message));
      return;
    }
    throw new Error(what + ': accepted');
  };
  await expectGrantError(() => newRc().getToken({ grant_type: 'password', username: 'alice', extension: 'x101', password: 'wrong' }), 'bad password');
  const j = await admin('POST', `/v1/admin/users/${alice.id}/jwt`, {});
  await newRc().authorize({ jwt: j.jwt });
  await admin('DELETE', `/v1/admin/users/${alice.id}/jwt/${j.jti}`);
  await expectGrantError(() => newRc().authorize({ jwt: j.jwt }), 'deleted JWT');
}

async function s2_stream() {
  const u = world.users.s2;
  const { ws, rec } = await connect(u);
  const got = [];
  const sub = await ws.subscribe([OWN], (evt) => got.push(evt));
  check(sub.subscriptionInfo.eventFilters[0] === topicOf('201'), 'eventFilters echo with ~ expanded');
  const N = 60;
  const published = [];
  for (let i = 0; i < N; i++) {
    const data = dataText(i);
    published.push({ id: await publish(topicOf('201'), data), data });
  }
  await waitFor(() => got.length >= N, 10000, `${N} events`);
  await sleep(200);
  checkStream(got, published, 'stream');
  const notes = frames(rec, 'ServerNotification');
  for (const p of published) {
    const f = notes.find((x) => x.msg[1].uuid === p.id);
    check(f, 'raw frame of ' + p.id);
    check(f.msg[0].messageId === p.id, 'messageId = event id');
    check(f.msg[1].event === topicOf('201'), 'event = topic');
    check(f.text.includes('"body":' + p.data), 'body byte-exact in the raw frame');
    check(f.msg[1].subscriptionId === sub.subscriptionInfo.id && f.msg[1].ownerId === '201', 'subscriptionId/ownerId');
  }
  const seqs = notes.map((f) => f.msg[0].wsc.sequence);
  check(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), 'wsc sequences contiguous');
  const cd = frames(rec, 'ConnectionDetails')[0].msg;
  check(cd[1].recoveryBufferSize === 100 && cd[1].maxConnectionsPerSession === MAX_CONN_PER_SESSION &&
    cd[1].recoveryTimeout === RECOVERY_TIMEOUT_S, 'ConnectionDetails values in force');
}

async function s3_recover() {
  const u = world.users.s3;
  const { ws, rec } = await connect(u);
  const got = [];
  const sub = await ws.subscribe([OWN], (evt) => got.push(evt));
  const subId = sub.subscriptionInfo.id;
  const tokenBefore = ws.wsToken.ws_access_token;
  let recovered = 0;
  ws.eventEmitter.on(Events.autoRecoverSuccess, () => { recovered++; });
  const published = [];
  const pub = (async () => {
    for (let i = 0; i < 50; i++) {
      published.push({ id: await publish(topicOf('301'), dataText(i)) });
      await sleep(20);
    }
  })();
  await waitFor(() => got.length >= 10, 5000, 'first events');
  ws.ws.terminate();
  await pub;
  await waitFor(() => recovered > 0, 15000, 'autoRecoverSuccess');
  await waitFor(() => got.length >= published.length, 10000, 'all events after recovery');
  await sleep(200);
  checkStream(got, published, 'recovery');
  check(got.every((e) => e.subscriptionId === subId), 'same subscription id after recovery');
  check(ws.subscription.subscriptionInfo.id === subId, 'client kept its subscription');
  check(rec.urls.length === 2, 'one reconnect: ' + rec.urls.length);
  const tok = (u2) => new URL(u2).searchParams.get('access_token');
  check(tok(rec.urls[1]) === tokenBefore && tok(rec.urls[0]) === tokenBefore, 'cached ws token reused');
  check(new URL(rec.urls[1]).searchParams.get('wsc'), 'reconnect presented wsc');
  const cd = frames(rec, 'ConnectionDetails');
  check(cd.length === 2 && cd[1].msg[1].recoveryState === 'Successful', 'recoveryState Successful');
}

async function s4_expired() {
  const u = world.users.s4;
  const { ws, rec } = await connect(u, { server: proxy.url + '/ringcentral' });
  check(ws.wsToken.uri.startsWith(proxy.url.replace('http', 'ws')), 'ws uri from core.public_url');
  const got = [];
  const sub = await ws.subscribe([OWN], (evt) => got.push(evt));
  const oldSub = sub.subscriptionInfo.id;
  await publish(topicOf('401'), dataText(0));
  await waitFor(() => got.length === 1, 5000, 'first event');
  const oldSeq = ws.wsc.sequence;
  let failed = 0;
  ws.eventEmitter.on(Events.autoRecoverFailed, () => { failed++; });
  proxy.pause();
  ws.ws.terminate();
  await sleep((RECOVERY_TIMEOUT_S + 3) * 1000);
  await publish(topicOf('401'), dataText(1));  // while away: lost by design (Failed)
  proxy.resume();
  await waitFor(() => failed > 0, 15000, 'autoRecoverFailed');
  const cds = frames(rec, 'ConnectionDetails');
  const last = cds[cds.length - 1].msg[1];
  check(last.recoveryState === 'Failed' && last.recoveryErrorCode === 'HRD-1001',
    'Failed HRD-1001: ' + JSON.stringify(last));
  await waitFor(() => ws.subscription.subscriptionInfo && ws.subscription.subscriptionInfo.id !== oldSub, 5000, 're-subscription');
  const before = got.length;
  const later = [];
  for (let i = 0; i < 5; i++) later.push({ id: await publish(topicOf('401'), dataText(i)) });
  await waitFor(() => got.length >= before + 5, 5000, 'later events');
  checkStream(got.slice(before), later, 'after Failed');
  const notes = frames(rec, 'ServerNotification').slice(-5);
  check(notes.every((f) => f.msg[0].wsc.sequence > oldSeq), 'new sequences exceed old ones');
}

async function s5_heartbeat() {
  const u = world.users.s5;
  const { ws, rec } = await connect(u, { wsOptions: { autoRecover: { enabled: true, pingServerInterval: 1000 } } });
  await ws.subscribe([OWN], () => {});
  await sleep(4500);
  const sentIds = rec.sent.map((s) => JSON.parse(s)[0]).filter((m) => m.type === 'Heartbeat').map((m) => m.messageId);
  const replies = frames(rec, 'Heartbeat').map((f) => f.msg[0]);
  check(sentIds.length >= 3, 'heartbeats repeat: ' + sentIds.length);
  for (const id of sentIds.slice(0, -1))
    check(replies.some((r) => r.messageId === id && r.status === 200), 'Heartbeat reply for ' + id);
}

async function s6_crud() {
  const u = world.users.s6;
  const { ws, rec } = await connect(u);
  const got = [];
  const cb = (evt) => got.push(evt);
  const first = await ws.subscribe([OWN], cb);
  const firstId = first.subscriptionInfo.id;
  const second = await ws.subscribe([OWN], cb);
  const secondId = second.subscriptionInfo.id;
  check(secondId !== firstId, 'second POST gives a new id');
  const expect404 = async (method, p) => {
    try { await ws.request(method, p); } catch (e) {
      check(e.response && e.response.status === 404 && e.response.data.errorCode === 'CMN-102', `${method} ${p}: ${e.response && e.response.status}`);
      return;
    }
    throw new Error(`${method} ${p}: accepted`);
  };
  await expect404('GET', '/restapi/v1.0/subscription/' + firstId);
  await expect404('DELETE', '/restapi/v1.0/subscription/sub_unknown');
  await expect404('PUT', '/restapi/v1.0/subscription/sub_unknown');
  await second.refresh();
  check(second.subscriptionInfo.id === secondId, 'PUT keeps the id');
  const list = await ws.request('GET', '/restapi/v1.0/subscription/');
  check(list.data.records.length === 1 && list.data.records[0].id === secondId, 'GET collection');
  const id = await publish(topicOf('601'), dataText(0));
  await waitFor(() => got.some((e) => e.uuid === id), 5000, 'event after replace');
  const notes = frames(rec, 'ServerNotification');
  check(notes.every((f) => f.msg[1].subscriptionId === secondId), 'no event carries the old id');
  const bad = await ws.request('POST', '/restapi/v1.0/subscription', { eventFilters: ['/restapi/*/x'] }).catch((e) => e);
  check(bad.response && bad.response.status === 400 && bad.response.data.errorCode === 'CMN-101', 'invalid filters: 400 CMN-101');
  const still = await ws.request('GET', '/restapi/v1.0/subscription/' + secondId);
  check(still.data.id === secondId, 'rejected POST leaves the previous subscription');
}

async function s7_revoke() {
  const u = world.users.s7;
  const { rc, ws, rec } = await connect(u);
  await ws.subscribe([OWN], () => {});
  const saved = { ...rc.token };
  const wsTok = ws.wsToken;
  // A second socket of the same login stays open across the revoke.
  const open = rawSocket(`${wsTok.uri}?access_token=${wsTok.ws_access_token}`);
  await sleep(300);
  await rc.revoke();
  const deletes = rec.sent.map((s) => JSON.parse(s)).filter((m) => m[0].method === 'DELETE');
  check(deletes.length === 1, 'DELETE sent');
  const delReply = frames(rec, 'ClientRequest').find((f) => f.msg[0].messageId === deletes[0][0].messageId);
  check(delReply && delReply.msg[0].status === 204, 'DELETE answered 204');
  const o = await open;
  check(o.frames.some((f) => f[0].type === 'Error' && f[1].errorCode === 'HRD-401') && o.close === 4001,
    'open socket: Error HRD-401 then 4001: ' + JSON.stringify(o.frames.slice(-1)) + ' ' + o.close);
  rc.token = saved;
  const w = await rc.post('/restapi/oauth/wstoken').catch((e) => e);
  check(w.response && w.response.status === 401, '/wstoken after revoke: ' + (w.response && w.response.status));
  const r = await rc.refresh(saved.refresh_token).catch((e) => e);
  check(r.response && r.response.status === 400 && r.response.data.error === 'invalid_grant', 'refresh after revoke');
  const s = await rawSocket(`${wsTok.uri}?access_token=${wsTok.ws_access_token}`);
  check(s.opened && s.httpError === null, 'upgrade accepted');
  check(s.frames.length === 1 && s.frames[0][0].type === 'Error' && s.frames[0][0].status === 401 &&
    s.frames[0][1].errorCode === 'HRD-401' && s.close === 4001, 'old ws token: Error frame, 4001');
}

async function s8_scoping() {
  const alice = world.users.alice;
  const { ws } = await connect(alice);
  const got = [];
  const sub = await ws.subscribe([OWN, topicOf('102'), topicOf('101', '4200'),
    '/restapi/v1.0/account/~/extension/~/presence/*'], (e) => got.push(e));
  const info = sub.subscriptionInfo;
  check(info.eventFilters.length === 1 && info.eventFilters[0] === topicOf('101'), 'only own filter accepted');
  const reasons = info.disabledFilters.map((d) => d.reason).sort();
  check(JSON.stringify(reasons) === '["Forbidden","Forbidden","Invalid"]', 'disabledFilters ' + JSON.stringify(info.disabledFilters));
  const all = await ws.request('POST', '/restapi/v1.0/subscription', { eventFilters: [topicOf('102')] }).catch((e) => e);
  check(all.response && all.response.status === 403 && all.response.data.errorCode === 'CMN-401', 'all forbidden: 403');
  await publish(topicOf('102'), dataText(0));                              // another extension
  await publish(topicOf('101', '4200'), dataText(0), world.pub2.api_key);  // another tenant
  await publish(topicOf('101'), dataText(0), world.pub2.api_key);          // forged topic, other tenant
  const mine = await publish(topicOf('101'), dataText(0));
  await waitFor(() => got.some((e) => e.uuid === mine), 5000, 'own event');
  await sleep(300);
  check(got.length === 1, 'foreign events arrived: ' + got.map((e) => e.event).join(','));
  // An admin user reaches every extension of its tenant, never another tenant.
  const carol = await connect(world.users.carol);
  const cgot = [];
  const csub = await carol.ws.subscribe([topicOf('102'), topicOf('102', '4200')], (e) => cgot.push(e));
  check(csub.subscriptionInfo.eventFilters.length === 1 && csub.subscriptionInfo.disabledFilters[0].reason === 'Forbidden', 'admin reach');
  const other = await publish(topicOf('102'), dataText(0));
  await publish(topicOf('102', '4200'), dataText(0), world.pub2.api_key);
  await waitFor(() => cgot.some((e) => e.uuid === other), 5000, 'admin sees extension 102');
  await sleep(200);
  check(cgot.length === 1, 'admin: cross-tenant event arrived');
}

// Even rounds: the main socket is terminated and recovers (replay race). Odd rounds: another
// socket of the same login subscribes while events flow (reply / first-notification race), takes
// a few events and is revoked. The client attaches a new subscription's listener before its
// POST, so a notification reaching that socket first would crash it: a *replacing* POST on a
// socket that is receiving events is a client limitation (one socket per subscription, §8.10).
async function s9_races() {
  const u = world.users.s9;
  const { rc, ws, rec } = await connect(u, { wsOptions: { autoRecover: { enabled: true, checkInterval: () => 100 } } });
  const got = [];
  await ws.subscribe([OWN], (evt) => got.push(evt));
  let recovered = 0, failedRecoveries = 0;
  ws.eventEmitter.on(Events.autoRecoverSuccess, () => { recovered++; });
  ws.eventEmitter.on(Events.autoRecoverFailed, () => { failedRecoveries++; });
  const published = [];
  let stop = false;
  const pub = (async () => {
    let i = 0;
    while (!stop) { published.push({ id: await publish(topicOf('901'), dataText(i++)) }); await sleep(5); }
  })();
  const ROUNDS = 24;
  const others = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        const before = recovered + failedRecoveries;
        ws.ws.terminate();
        await waitFor(() => recovered + failedRecoveries > before, 10000, 'recovery in round ' + r);
      } else {
        const other = new WebSocketExtension({ autoRecover: { enabled: false } });
        await rc.installExtension(other);
        const mine = [];
        await other.subscribe([OWN], (evt) => mine.push(evt));
        await waitFor(() => mine.length >= 3, 5000, 'events on the new socket, round ' + r);
        await other.revoke();
        others.push(mine);
      }
      await sleep(30);
    }
  } finally {
    stop = true;
    await pub;
  }
  check(failedRecoveries === 0, failedRecoveries + ' recoveries failed');
  await waitFor(() => got.length >= published.length, 10000, 'all events after races');
  await sleep(300);
  // @rc-ex/ws starts recovering as soon as a terminated socket is CLOSING, while that socket
  // may still hand over messages it had already received (permessage-deflate inflates them
  // asynchronously). The new socket then presents the wsc held *before* those messages, and the
  // server rightly replays them. Such a copy is the client's own: the earlier copy arrived on
  // the old socket after the client had opened the new one with an older wsc. Any other
  // duplicate fails.
  let excused = 0;
  const explained = (uuid) => {
    const copies = rec.tagged.filter((x) => x.text.includes('"messageId":"' + uuid + '"') &&
      x.text.includes('ServerNotification'));
    const ok = copies.length === 2 && copies[0].index < copies[1].index &&
      copies[0].t >= rec.opened[copies[1].index];
    if (ok) excused++;
    return ok;
  };
  try {
    checkStream(got, published, 'races (recovering socket)', explained);
  } catch (e) {
    if (process.env.RC_COMPAT_DEBUG) {
      const ids = got.map((x) => x.uuid);
      const dup = ids.find((id, i) => ids.indexOf(id) !== i);
      const seqs = [];
      for (const t of rec.raw) {
        const m = JSON.parse(t);
        if (m[0].type === 'ConnectionDetails') seqs.push(`CD ${m[0].wsc.sequence} ${m[1].recoveryState || ''} ${m[1].recoveryErrorCode || ''}`);
        else if (m[0].type === 'ServerNotification') seqs.push(`${m[1].uuid === dup ? '>>' : ''}${m[0].wsc.sequence}`);
        else seqs.push(m[0].type + (m[0].wsc ? ' ' + m[0].wsc.sequence : ''));
      }
      log(seqs.join(' '));
      for (const x of rec.tagged.filter((y) => y.text.includes(dup)))
        log(`  dup copy on socket ${x.index} at +${x.t - rec.opened[0]} ms; sockets opened at ` +
            rec.opened.map((o) => '+' + (o - rec.opened[0])).join(' '));
      log(rec.urls.map((u2) => { const w = new URL(u2).searchParams.get('wsc'); return w ? Buffer.from(w.split('.')[0], 'base64url').toString().split('\n').slice(1, 3).join('+') : '-'; }).join(' '));
    }
    throw e;
  }
  const order = published.map((p) => p.id);
  for (const mine of others) {
    const ids = mine.map((e) => e.uuid);
    const at = order.indexOf(ids[0]);
    check(at >= 0 && JSON.stringify(order.slice(at, at + ids.length)) === JSON.stringify(ids),
      'a subscribing socket saw a gap, a duplicate or disorder');
  }
  log(`    (${ROUNDS} rounds, ${published.length} events, ${excused} client-caused duplicate(s))`);
}

async function s10_refusals() {
  const u = world.users.s10;
  const rc = newRc();
  await rc.authorize({ jwt: u.jwt });
  const tok = await wsTokenOf(rc);
  const bad = await rawSocket(`${tok.uri}?access_token=not-a-token`);
  check(bad.opened && bad.frames[0][0].type === 'Error' && bad.frames[0][1].errorCode === 'HRD-401' && bad.close === 4001, 'bad ws token');
  const wscBad = await rawSocket(`${tok.uri}?access_token=${tok.ws_access_token}&wsc=garbage`);
  check(wscBad.opened && wscBad.frames[0][1].errorCode === 'WSG-400' && wscBad.close === 1008, 'malformed wsc');
  // The unmodified client, given a malformed wsc: an Error frame, no crash.
  const ws1 = new WebSocketExtension({ wscToken: 'garbage', autoRecover: { enabled: false } });
  const e1 = await rc.installExtension(ws1).catch((e) => e);
  check(e1 instanceof Error && /WSG-400/.test(e1.message), 'client sees WSG-400');
  // Connection limit per login.
  const held = [];
  for (let i = 0; i < MAX_CONN_PER_SESSION; i++) {
    const s = new WebSocket(`${tok.uri}?access_token=${tok.ws_access_token}`);
    s.on('error', () => {});
    held.push(s);
    await new Promise((r) => s.once('message', r));
  }
  cleanups.push(() => held.forEach((s) => s.terminate()));
  const over = await rawSocket(`${tok.uri}?access_token=${tok.ws_access_token}`);
  check(over.opened && over.frames[0][1].errorCode === 'HRD-429' && over.close === 4029, 'connection limit');
  const ws2 = new WebSocketExtension({ autoRecover: { enabled: false } });
  const e2 = await rc.installExtension(ws2).catch((e) => e);
  check(e2 instanceof Error && /HRD-429/.test(e2.message), 'client sees HRD-429');
  // A bad frame: Error HRD-400, the socket stays.
  const s = held[0];
  const reply = new Promise((r) => s.once('message', (d) => r(JSON.parse(String(d)))));
  s.send('[{"type":"Bogus","messageId":"m1"}]');
  const err = await reply;
  check(err[0].type === 'Error' && err[0].messageId === 'm1' && err[1].errorCode === 'HRD-400', 'bad frame');
  const hb = new Promise((r) => s.once('message', (d) => r(JSON.parse(String(d)))));
  s.send('[{"type":"Heartbeat","messageId":"still"}]');
  check((await hb)[0].messageId === 'still', 'socket stays after a bad frame');
  held.forEach((x) => x.terminate());
}

// ---------------------------------------------------------------- main

const scenarios = [
  ['1 login (password, login*ext, JWT; bad password, deleted JWT)', s1_login],
  ['2 ~ filters, 60 events once and in order, body byte-exact', s2_stream],
  ['3 terminate mid-stream: autoRecoverSuccess, no gap, no duplicate', s3_recover],
  ['4 reconnect after the window: Failed, re-subscribe, sequences grow', s4_expired],
  ['5 Heartbeat replies (pingServerInterval 1000)', s5_heartbeat],
  ['6 subscription CRUD (replace, PUT keeps id, 404)', s6_crud],
  ['7 revoke', s7_revoke],
  ['8 scoping (tenant, extension, admin user)', s8_scoping],
  ['9 races: publish while recovering and while new sockets subscribe, 24 rounds', s9_races],
  ['10 refusals survive (bad token, limit, malformed wsc, bad frame)', s10_refusals],
];

async function main() {
  trapCrashes(log);
  const deadline = setTimeout(() => { log('FAIL: suite deadline passed'); finish(1); }, DEADLINE_MS);
  try {
    proxy = await startProxy(() => Number(new URL(base).port));
    base = await startServer(proxy.url);
    log('herald at ' + base);
    await setUp();
  } catch (e) {
    log('FAIL: set-up: ' + e.message);
    return finish(1);
  }
  const only = process.env.RC_COMPAT_ONLY ? process.env.RC_COMPAT_ONLY.split(',') : null;
  const failed = await runScenarios(scenarios, only, log);
  clearTimeout(deadline);
  return finish(failed);
}

async function finish(code) {
  for (const c of cleanups.splice(0).reverse()) { try { await c(); } catch (e) { /* best effort */ } }
  stopServer();
  setTimeout(() => process.exit(code), 200);
}

main();
