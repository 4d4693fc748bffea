#!/usr/bin/env node
// Compatibility suite of tracker.md §9: atmosphere.js 2.3.6 (pinned by package-lock.json),
// unmodified, in Node, subscribing as the spec's documented snippet does (only the base URL
// changed), against a Herald started here on 127.0.0.1:0 with a 2 s heartbeat and a 6 s
// timeout. A tap on the WebSocket constructor atmosphere.js uses (its bundled `ws` 1.x) counts
// frames both ways; raw sockets use the same `ws`. States are published natively; REST with
// fetch. Each scenario prints PASS or FAIL; the exit code is the number of failures. Loopback
// only; the server is stopped by its PID.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const atmosphere = require('atmosphere.js');
const RawWS = require('ws');
const { sleep, check, waitFor, startHerald, http } = require('./harness');

const HERALD_BIN = process.env.HERALD_BIN;
const ADMIN_KEY = 'hka_compat_' + crypto.randomBytes(12).toString('hex');
const DEADLINE_MS = 180000;
const MAX_PER_REQUEST = 50;


// ---- the tap: every socket atmosphere.js opens, with what went each way
const taps = [];
const RealWS = global.WebSocket;
function TapWS(url) {
  const w = new RealWS(url);
  const t = { url, ws: w, recv: [], sent: [] };
  taps.push(t);
  // ws 1.x's onmessage setter drops other 'message' listeners: tap emit() itself.
  const emit = w.emit.bind(w);
  w.emit = (ev, ...a) => { if (ev === 'message') t.recv.push(String(a[0])); return emit(ev, ...a); };
  const send = w.send.bind(w);
  w.send = (d, ...rest) => { t.sent.push(String(d)); return send(d, ...rest); };
  return w;
}
global.WebSocket = TapWS;
global.window.WebSocket = TapWS;

// ---- the server
let srv = null;
function startServer() {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-tracker-'));
  const env = {
    HERALD_ADMIN_KEY: ADMIN_KEY,
    HERALD_TRACKER_HEARTBEAT_INTERVAL_MS: '2000', HERALD_TRACKER_HEARTBEAT_TIMEOUT_MS: '6000',
    HERALD_TRACKER_MAX_TRACKERS_PER_REQUEST: String(MAX_PER_REQUEST),
    HERALD_TRACKER_MAX_HASHES_PER_USER: '8',
  };
  return startHerald({ bin: HERALD_BIN, env, store: 'sqlite', data });
}

async function admin(method, p, body) {
  const r = await http(method, srv.base + p, body === undefined ? undefined : JSON.stringify(body),
    { Authorization: 'Bearer ' + ADMIN_KEY, 'Content-Type': 'application/json' });
  if (r.status >= 300) throw new Error(`admin ${method} ${p}: ${r.status} ${r.text}`);
  return r.json;
}
const world = {};
// Publishes a state natively as the tenant's publisher app; returns the exact data text sent.
let stateNo = 0;
const latest = {};
async function publishState(tenant, id, expect = 201) {
  const data = `{"source_id":${id},"gps":{"updated":"2026-03-01 10:00:01","signal_level":100,` +
    `"location":{"lat":52.52,"lng":13.405},"heading":90,"speed":${++stateNo},"alt":35},` +
    `"connection_status":"active","movement_status":"moving","gsm":null,"n":${stateNo}}`;
  const body = `{"topic":"/trackers/${id}","type":"state","subject":"${id}","retain":true,"data":${data}}`;
  const r = await http('POST', srv.base + '/v1/events', body,
    { Authorization: 'Bearer ' + world.pub[tenant].api_key, 'Content-Type': 'application/json' });
  check(r.status === expect, `publish ${id}: ${r.status} ${r.text}`);
  if (r.status === 201) latest[id] = data;
  return data;
}
async function setSubject(tenant, id, fields) {
  return admin('PUT', `/v1/admin/subjects/${id}`, { tenant, kind: 'tracker', ...fields });
}
function rest(p, params, how = 'json') {
  const url = srv.base + '/tracker/v2' + p;
  if (how === 'get') return http('GET', url + '?' + new URLSearchParams(params));
  if (how === 'form') {
    return http('POST', url, String(new URLSearchParams(params)),
      { 'Content-Type': 'application/x-www-form-urlencoded' });
  }
  return http('POST', url, JSON.stringify(params), { 'Content-Type': 'application/json' });
}
async function login(user, how = 'json') {
  const r = await rest('/user/auth', { login: user, password: 'pw-' + user }, how);
  check(r.status === 200 && r.json.success && /^[0-9a-f]{32}$/.test(r.json.hash), 'login ' + r.text);
  return r.json.hash;
}

async function setUp() {
  await admin('POST', '/v1/admin/tenants', { id: 'A' });
  await admin('POST', '/v1/admin/tenants', { id: 'B' });
  world.pub = {};
  for (const t of ['A', 'B']) {
    world.pub[t] = await admin('POST', '/v1/admin/apps', { tenant: t, name: 'pub' + t, role: 'publisher' });
  }
  const user = (tenant, login, extra = {}) => admin('POST', '/v1/admin/users',
    { tenant, login, password: 'pw-' + login, ...extra });
  world.alice = await user('A', 'alice');
  world.carol = await user('A', 'carol', { trackers: [1001, 1003, 1004] });  // not 1002
  world.dave = await user('A', 'dave');
  world.bob = await user('B', 'bob');
  await setSubject('A', '1001', { label: 'Truck 1' });
  await setSubject('A', '1002', { label: 'Truck 2' });
  await setSubject('A', '1003', { label: 'Truck 3', blocked: true });
  await setSubject('A', '1004', { label: 'Truck 4', attrs: { source_id: 5504 } });
  await setSubject('B', '2001', { label: 'B truck' });
  // Retained states before anyone subscribes (the snapshots of scenario 2).
  world.snap1001 = await publishState('A', 1001);
  world.snap1004 = await publishState('A', 1004);
  world.snap2001 = await publishState('B', 2001);
}

// ---- an atmosphere.js client, subscribed exactly as the spec's snippet does
function client(hash, ids, opts = {}) {
  const c = { messages: [], opens: 0, reopens: 0, hash, ids };
  const url = srv.base + (opts.path || '/tracker/v2/event/subscription');
  const sub = () => c.socket.push(JSON.stringify({ action: 'subscribe', hash: c.hash, events: ['state'], trackers: c.ids }));
  c.socket = atmosphere.subscribe({
    url, contentType: 'application/json', transport: 'websocket',
    trackMessageLength: !!opts.trackMessageLength, reconnectInterval: 2000,
    onOpen: () => { c.opens++; sub(); }, onReopen: () => { c.reopens++; sub(); },
    onMessage: (r) => { c.messages.push(r.responseBody); },
  });
  const wsUrl = url.replace(/^http/, 'ws');
  const tapPrefix = wsUrl + (wsUrl.includes('?') ? '&' : '?') + 'X-Atmosphere-tracking-id=';
  c.tap = () => taps.filter((t) => t.url.startsWith(tapPrefix));
  c.json = () => c.messages.map((m) => { try { return JSON.parse(m); } catch (e) { return null; } }).filter((m) => m);
  c.events = (ev) => c.json().filter((m) => m.type === 'event' && (!ev || m.event === ev));
  return c;
}
// The exact `data` text of a state frame.
function dataText(frame) {
  const at = frame.indexOf('"data":');
  return frame.slice(at + 7, frame.length - 1);
}
function raw(query = '') {
  const ws = new RawWS(srv.base.replace('http', 'ws') + '/tracker/v2/event/subscription' + query);
  const r = { ws, frames: [], closed: null };
  ws.on('message', (d) => r.frames.push(String(d)));
  ws.on('close', (code) => { r.closed = code; });
  ws.on('error', () => {});
  return new Promise((resolve) => ws.on('open', () => resolve(r)));
}

// ---------------------------------------------------------------- scenarios

async function s1_login() {
  const hashes = [await login('alice', 'json'), await login('alice', 'form'), await login('alice', 'get')];
  check(new Set(hashes).size === 3, 'distinct hashes');
  const bad = await rest('/user/auth', { login: 'alice', password: 'nope' });
  check(bad.status === 400 && bad.json.status.code === 102, 'wrong password: ' + bad.text);
  check(bad.json.status.description === 'Wrong login or password', 'description');
  const unknown = await rest('/user/auth', { login: 'nobody', password: 'x' });
  check(unknown.status === 400 && unknown.json.status.code === 102, 'unknown login: ' + unknown.text);
  const v1 = await http('POST', srv.base + '/tracker/user/auth', JSON.stringify({ login: 'alice', password: 'pw-alice' }));
  check(v1.status === 200 && v1.json.success, 'without /v2');
  check(v1.headers.get('access-control-allow-origin') === '*', 'CORS');
}

async function s2_statuses_and_snapshots() {
  world.hashA = await login('alice');
  world.c1 = client(world.hashA, [1001, 2001, 1003, 1004, 9999]);
  await waitFor(() => world.c1.json().length >= 3, 5000, 'reply and snapshots');
  const [reply, s1, s2] = world.c1.json();
  check(reply.type === 'response' && reply.action === 'subscription/subscribe', 'reply first: ' + world.c1.messages[0]);
  // Raw text: a JS object would reorder integer-like keys.
  check(world.c1.messages[0] === '{"type":"response","action":"subscription/subscribe","events":["state"],' +
    '"data":{"state":{"1001":"normal","2001":"unknown","1003":"blocked","1004":"normal","9999":"unknown"}}}',
  'statuses in request order: ' + world.c1.messages[0]);
  check(s1.event === 'state' && dataText(world.c1.messages[1]) === world.snap1001, 'snapshot 1001 first');
  check(s2.event === 'state' && dataText(world.c1.messages[2]) === world.snap1004, 'snapshot 1004 second');
  check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(s1.user_time), 'user_time ' + s1.user_time);
  world.hashC = await login('carol');
  world.c2 = client(world.hashC, [1001, 1002], { path: '/tracker/event/subscription' });
  await waitFor(() => world.c2.json().length >= 2, 5000, 'carol reply');
  check(world.c2.messages[0].endsWith('"data":{"state":{"1001":"normal","1002":"disallowed"}}}'),
    'carol statuses ' + world.c2.messages[0]);
}

async function s3_states_in_order() {
  const before = world.c1.events('state').length, beforeC2 = world.c2.messages.length;
  const sent = [];
  for (let i = 0; i < 20; i++) {
    const id = i % 2 ? 1004 : 1001;
    sent.push(await publishState('A', id));
    if (i % 5 === 0) { await publishState('B', 2001); await publishState('A', 1003); await publishState('A', 1002); }
  }
  await waitFor(() => world.c1.events('state').length >= before + 20, 5000, '20 states');
  await sleep(300);
  const got = world.c1.messages.filter((m) => m.includes('"event":"state"')).slice(before).map(dataText);
  check(got.length === 20, 'exactly 20, got ' + got.length);
  for (let i = 0; i < 20; i++) check(got[i] === sent[i], `state ${i} byte-equal`);
  const c2Extra = world.c2.messages.slice(beforeC2);
  check(c2Extra.every((m) => !m.includes('"source_id":1002')), 'carol never gets 1002');
  check(c2Extra.filter((m) => m.includes('"event":"state"')).length === 10, 'carol gets 1001 x10');
}

async function s4_lifecycle() {
  const c = world.c1;
  const mark = c.messages.length;
  await setSubject('A', '1001', { blocked: true });
  const hidden = await publishState('A', 1001);
  await setSubject('A', '1001', { blocked: false });
  await waitFor(() => c.messages.length >= mark + 3, 5000, 'block, unblock, state')
    .catch((e) => { throw new Error(e.message + ': ' + c.messages.slice(mark).join('\n')); });
  await sleep(300);
  const seq = c.messages.slice(mark);
  check(seq.length === 3, 'three frames: ' + seq.join('\n'));
  check(seq[0] === '{"type":"event","event":"lifecycle","data":{"source_id":1001,"lifecycle_event":"block"}}', seq[0]);
  check(seq[1] === '{"type":"event","event":"lifecycle","data":{"source_id":1001,"lifecycle_event":"unblock"}}', seq[1]);
  check(dataText(seq[2]) === hidden, 'the state published while blocked, once');
  // The blocked tracker 1003: its latest state comes after its unblock.
  const m2 = c.messages.length;
  const latest = await publishState('A', 1003);
  await setSubject('A', '1003', { blocked: false });
  await waitFor(() => c.messages.length >= m2 + 2, 5000, 'unblock 1003 + state');
  check(c.messages[m2].includes('"lifecycle_event":"unblock"') && c.messages[m2].includes('"source_id":1003'), c.messages[m2]);
  check(dataText(c.messages[m2 + 1]) === latest, '1003 latest state');
  // Corrupt 1004: `corrupt`, then nothing.
  const m3 = c.messages.length;
  await admin('DELETE', '/v1/admin/subjects/1004?tenant=A');
  await waitFor(() => c.messages.length >= m3 + 1, 5000, 'corrupt');
  check(c.messages[m3] === '{"type":"event","event":"lifecycle","data":{"source_id":5504,"lifecycle_event":"corrupt"}}', c.messages[m3]);
  await publishState('A', 1004, 409);
  await sleep(500);
  check(c.messages.length === m3 + 1, 'nothing after corrupt');
}

async function s5_heartbeats() {
  // atmosphere.js with TrackMessageSize: <n>|<uuid>|2000|X|, then 1|X; X both ways, no close.
  const hash = await login('dave');
  const c = client(hash, [1002], { trackMessageLength: true, path: '/tracker/v2/event/subscription?hb=1' });
  await waitFor(() => c.tap().length === 1 && c.tap()[0].recv.length >= 1, 5000, 'handshake');
  const t = c.tap()[0];
  check(/^44\|[0-9a-f-]{36}\|2000\|X\|$/.test(t.recv[0]), 'prefixed handshake ' + t.recv[0]);
  await sleep(7500);
  const xIn = t.recv.filter((f) => f === '1|X').length, xOut = t.sent.filter((f) => f.trim() === 'X').length;
  check(xIn >= 2, 'server X frames: ' + xIn);
  check(xOut >= 2, 'client X frames: ' + xOut);
  check(t.ws.readyState === 1, 'still open');
  check(c.json().some((m) => m.type === 'response'), 'prefixed reply parsed by atmosphere.js');
  c.socket.close();
  // A silent raw client: closed 4008 after ~6 s.
  const r = await raw();
  const t0 = Date.now();
  await waitFor(() => r.closed !== null, 10000, 'silent client closed');
  const took = Date.now() - t0;
  check(r.closed === 4008, 'close code ' + r.closed);
  check(took >= 5000 && took <= 8500, 'closed after ' + took + ' ms');
}

async function s6_errors() {
  const c = world.c1;
  const push = async (text) => {
    const m = c.messages.length;
    c.socket.push(text);
    await waitFor(() => c.messages.length > m, 3000, 'reply to ' + text.slice(0, 40));
    return JSON.parse(c.messages[m]);
  };
  let e = await push('this is not json');
  check(e.type === 'error' && e.status.code === 5 && e.action === null, 'non-JSON: ' + JSON.stringify(e));
  e = await push(JSON.stringify({ action: 'subscribe', hash: 'abc', events: ['state'], trackers: [1001] }));
  check(e.status.code === 3 && e.status.description === 'Wrong user hash', 'abc: ' + JSON.stringify(e));
  check(JSON.stringify(e.data) === '{"events":["state"],"trackers":[1001]}', 'echo');
  e = await push(JSON.stringify({ action: 'subscribe', hash: 'a'.repeat(32), events: ['state'], trackers: [1001] }));
  check(e.status.code === 4, 'unknown hash: ' + JSON.stringify(e));
  e = await push(JSON.stringify({ action: 'subscribe', hash: world.hashA, events: ['foo'], trackers: [1001] }));
  check(e.status.code === 7 && e.action === 'subscription/subscribe', 'foo: ' + JSON.stringify(e));
  const many = Array.from({ length: MAX_PER_REQUEST + 1 }, (_, i) => i + 1);
  e = await push(JSON.stringify({ action: 'unsubscribe', hash: world.hashA, events: ['state'], trackers: many }));
  check(e.status.code === 9 && e.action === 'subscription/unsubscribe', 'too many: ' + JSON.stringify(e));
  // Another user's hash on this socket: 13.
  e = await push(JSON.stringify({ action: 'subscribe', hash: world.hashC, events: ['state'], trackers: [1001] }));
  check(e.status.code === 13, 'other user: ' + JSON.stringify(e));
  const m = c.messages.length;
  const d = await publishState('A', 1001);
  await waitFor(() => c.messages.length > m, 3000, 'still delivering');
  check(dataText(c.messages[m]) === d, 'the socket keeps working');
}

async function s7_admin_close_and_reopen() {
  const c = world.c1;
  const uuid = c.tap()[0].recv[0].split('|')[0];
  const list = await admin('GET', '/v1/admin/connections');
  const mine = list.connections.find((x) => x.tracking_id === uuid);
  check(mine && mine.dialect === 'tracker' && mine.login === 'alice', 'listed: ' + JSON.stringify(list.connections));
  const mark = c.messages.length;
  await admin('DELETE', '/v1/admin/connections/' + mine.id);
  await waitFor(() => c.reopens >= 1 && c.json().slice(mark).some((x) => x.type === 'response'), 10000, 'reopen + reply');
  await waitFor(() => c.tap().length >= 2 && c.tap()[1].recv.length >= 1, 5000, 'second handshake');
  check(c.tap()[1].recv[0].startsWith(uuid + '|'), 'same tracking id on reconnect: ' + c.tap()[1].recv[0]);
  check(c.tap()[1].url.includes('X-Atmosphere-tracking-id=' + uuid), 'asked for it');
  await sleep(300);
  const after = c.json().slice(mark).filter((x) => x.type !== undefined);
  const replyText = c.messages.slice(mark).find((x) => x.startsWith('{"type":"response"'));
  check(replyText.endsWith('{"1001":"normal","2001":"unknown","1003":"normal","1004":"unknown","9999":"unknown"}}}'),
    'statuses after reopen ' + replyText);
  const snaps = after.filter((x) => x.event === 'state');
  check(snaps.length === 2 && snaps[0].data.source_id === 1001 && snaps[1].data.source_id === 1003, 'current states ' + JSON.stringify(snaps.map((s) => s.data.source_id)));
  const m2 = c.messages.length;
  const d1 = await publishState('A', 1001);
  const d2 = await publishState('A', 1003);
  await waitFor(() => c.messages.length >= m2 + 2, 3000, 'later states');
  await sleep(300);
  check(c.messages.length === m2 + 2 && dataText(c.messages[m2]) === d1 && dataText(c.messages[m2 + 1]) === d2, 'later states once each');
}

async function s8_logout() {
  const c = world.c1;
  const mark = c.messages.length;
  const r = await rest('/user/logout', { hash: world.hashA });
  check(r.status === 200 && r.json.success === true, 'logout ' + r.text);
  await waitFor(() => c.messages.length > mark, 3000, 'logout frame');
  check(c.messages[mark] === '{"type":"event","event":"logout","data":"session closed"}', c.messages[mark]);
  await publishState('A', 1001);
  c.socket.push(JSON.stringify({ action: 'subscribe', hash: world.hashA, events: ['state'], trackers: [1001] }));
  await waitFor(() => c.messages.length > mark + 1, 3000, 'error 4');
  await sleep(300);
  check(c.messages.length === mark + 2, 'one logout, no states: ' + c.messages.slice(mark).join('\n'));
  check(JSON.parse(c.messages[mark + 1]).status.code === 4, 'ended hash → 4');
  const again = await rest('/tracker/list', { hash: world.hashA });
  check(again.status === 400 && again.json.status.code === 4, 'REST with the ended hash: ' + again.text);
}

async function s9_close_request() {
  // atmosphere.js's own unsubscribe: the socket leaves the listing.
  const c2 = world.c2;
  const uuid = c2.tap()[0].recv[0].split('|')[0];
  c2.socket.close();
  await waitFor(async () => !(await admin('GET', '/v1/admin/connections')).connections.some((x) => x.tracking_id === uuid), 5000, 'c2 gone');
  // The close request itself: 200, empty text/plain; the socket holding the id closes 1000.
  const r = await raw('?X-Atmosphere-tracking-id=0&X-Atmosphere-Transport=websocket');
  await waitFor(() => r.frames.length >= 1, 3000, 'raw handshake');
  const id = r.frames[0].split('|')[0];
  const res = await http('GET', srv.base + '/tracker/v2/event/subscription?X-Atmosphere-Transport=close&X-Atmosphere-tracking-id=' + id + '&_=' + Date.now());
  check(res.status === 200 && res.text === '' && res.headers.get('content-type').startsWith('text/plain'), 'close reply ' + res.status + ' ' + res.text);
  await waitFor(() => r.closed !== null, 3000, 'closed');
  check(r.closed === 1000, 'close code ' + r.closed);
  const other = await http('GET', srv.base + '/tracker/v2/event/subscription?X-Atmosphere-Transport=long-polling');
  check(other.status === 400 && other.json.status.code === 5, 'long-polling refused ' + other.text);
}

async function s10_tenants() {
  const hashB = await login('bob');
  const list = await rest('/tracker/list', { hash: hashB });
  check(list.status === 200 && JSON.stringify(list.json.list.map((t) => t.id)) === '[2001]', 'bob lists ' + list.text);
  const st = await rest('/tracker/get_state', { hash: hashB, tracker_id: 1001 });
  check(st.status === 400 && st.json.status.code === 201, 'bob get_state 1001 ' + st.text);
  const own = await rest('/tracker/get_state', { hash: hashB, tracker_id: '2001' }, 'get');
  check(own.status === 200 && JSON.stringify(own.json.state) === JSON.stringify(JSON.parse(latest[2001])), 'bob state 2001 ' + own.text);
  const c = client(hashB, [1001, 1002, 2001], { path: '/tracker/v2/event/subscription?b=1' });
  await waitFor(() => c.json().length >= 2, 5000, 'bob reply');
  check(c.messages[0].endsWith('{"1001":"unknown","1002":"unknown","2001":"normal"}}}'), 'bob statuses ' + c.messages[0]);
  const m = c.messages.length;
  await publishState('A', 1001);
  await publishState('A', 1002);
  await sleep(400);
  check(c.messages.length === m, 'no A states for bob');
  const alice = await login('alice');
  const la = await rest('/tracker/list', { hash: alice }, 'form');
  check(JSON.stringify(la.json.list.map((t) => t.id)) === '[1001,1002,1003]', 'alice lists ' + la.text);
  const blocked = la.json.list.find((t) => t.id === 1001);
  check(blocked.source.id === 1001 && blocked.label === 'Truck 1', 'list record');
  c.socket.close();
}

// The error table's rows not met above (§2, §8), on REST and the socket.
async function s11_bad_input() {
  await admin('POST', '/v1/admin/users', { tenant: 'A', login: 'erin', password: 'pw-erin' });
  await admin('POST', '/v1/admin/users', { tenant: 'A', login: 'frank', password: 'pw-frank', blocked: true });
  const code = (r) => r.json && r.json.status && r.json.status.code;
  let r = await rest('/user/auth', { login: 'erin' });
  check(r.status === 400 && code(r) === 7, 'missing password: ' + r.text);
  r = await rest('/user/auth', { login: 'frank', password: 'pw-frank' });
  check(r.status === 403 && code(r) === 11, 'blocked user: ' + r.text);
  for (let i = 0; i < 8; i++) await login('erin');
  r = await rest('/user/auth', { login: 'erin', password: 'pw-erin' });
  check(r.status === 400 && code(r) === 104, 'hash limit: ' + r.text);
  for (let i = 0; i < 10; i++) await rest('/user/auth', { login: 'erin', password: 'bad' });
  r = await rest('/user/auth', { login: 'erin', password: 'pw-erin' });
  check(r.status === 400 && code(r) === 105, 'attempts limit (password not checked): ' + r.text);
  const hash = await login('dave');
  r = await rest('/tracker/get_state', { hash });
  check(r.status === 400 && code(r) === 7, 'missing tracker_id: ' + r.text);
  r = await rest('/tracker/get_state', { hash, tracker_id: '01001' });
  check(r.status === 400 && code(r) === 7, 'bad tracker_id: ' + r.text);
  await setSubject('A', '1002', { blocked: true });
  r = await rest('/tracker/get_state', { hash, tracker_id: 1002 });
  check(r.status === 403 && code(r) === 208, 'blocked: ' + r.text);
  r = await rest('/tracker/list', { hash: 'abc' });
  check(r.status === 400 && code(r) === 3, 'malformed hash: ' + r.text);
  r = await http('POST', srv.base + '/tracker/v2/tracker/list', '{"hash":', { 'Content-Type': 'application/json' });
  check(r.status === 400 && code(r) === 5, 'malformed body: ' + r.text);
  r = await http('POST', srv.base + '/tracker/v2/tracker/list', JSON.stringify({ hash, pad: 'x'.repeat(20000) }),
    { 'Content-Type': 'application/json' });
  check(r.status === 412 && code(r) === 9, 'body too large: ' + r.text);
  r = await http('GET', srv.base + '/tracker/v2/tracker/list', undefined, { Authorization: 'NVX ' + hash });
  check(r.status === 200 && r.json.success, 'NVX header: ' + r.text);
  r = await http('OPTIONS', srv.base + '/tracker/v2/user/auth');
  check(r.status === 204 && /POST/.test(r.headers.get('access-control-allow-methods')), 'preflight');
  // Publishers may not forge a tracker's lifecycle, nor send a non-object state.
  const forge = await http('POST', srv.base + '/v1/events',
    '{"topic":"/trackers/1001","type":"lifecycle","subject":"1001","data":{"lifecycle_event":"block"}}',
    { Authorization: 'Bearer ' + world.pub.A.api_key, 'Content-Type': 'application/json' });
  check(forge.status === 403, 'forged lifecycle: ' + forge.status + ' ' + forge.text);
  // A tracker id is unique server-wide and decimal.
  const dup = await http('PUT', srv.base + '/v1/admin/subjects/2001', JSON.stringify({ tenant: 'A', kind: 'tracker' }),
    { Authorization: 'Bearer ' + ADMIN_KEY, 'Content-Type': 'application/json' });
  check(dup.status === 409, 'B\'s id in A: ' + dup.status);
  const bad = await http('PUT', srv.base + '/v1/admin/subjects/t-1', JSON.stringify({ tenant: 'A', kind: 'tracker' }),
    { Authorization: 'Bearer ' + ADMIN_KEY, 'Content-Type': 'application/json' });
  check(bad.status === 400, 'non-decimal id: ' + bad.status);
  // An oversized frame: the server's close frame says 1009 (read off the wire: ws 1.x reports
  // 1006 when the server closes while it is still sending).
  const code1009 = await oversizedFrameCloseCode(70000);
  check(code1009 === 1009, 'oversized: ' + code1009);
}

// Sends one masked text frame of `size` bytes over a hand-made WebSocket handshake and returns
// the close code of the server's close frame (null if none came).
function oversizedFrameCloseCode(size) {
  const net = require('net');
  const { port } = srv;
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0), upgraded = false;
    const done = (v) => { sock.destroy(); resolve(v); };
    setTimeout(() => done(null), 5000);
    sock.on('error', () => {});
    sock.on('connect', () => sock.write('GET /tracker/v2/event/subscription HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Key: ' + crypto.randomBytes(16).toString('base64') + '\r\n\r\n'));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        buf = buf.subarray(end + 4);
        const payload = Buffer.alloc(size, 0x78), mask = crypto.randomBytes(4);
        const head = Buffer.alloc(14);
        head[0] = 0x81; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(size), 2); mask.copy(head, 10);
        for (let i = 0; i < size; i++) payload[i] ^= mask[i % 4];
        sock.write(Buffer.concat([head, payload]));
      }
      // Server frames are unmasked; skip text frames (the handshake) until a close (0x88).
      while (buf.length >= 2) {
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        if (buf.length < off + len) return;
        if ((buf[0] & 0x0f) === 8) return done(len >= 2 ? buf.readUInt16BE(off) : null);
        buf = buf.subarray(off + len);
      }
    });
  });
}

async function main() {
  if (!HERALD_BIN) { console.log('FAIL: HERALD_BIN must name the herald binary'); process.exit(1); }
  const deadline = setTimeout(() => { console.log('FAIL: deadline'); process.exit(99); }, DEADLINE_MS);
  srv = await startServer();
  let failures = 0;
  const run = async (name, fn) => {
    try {
      await fn();
      console.log('PASS ' + name);
    } catch (e) {
      failures++;
      console.log('FAIL ' + name + ': ' + (e && e.stack || e));
    }
  };
  await run('setup', setUp);
  await run('1 login', s1_login);
  await run('2 statuses and snapshots', s2_statuses_and_snapshots);
  await run('3 states in order', s3_states_in_order);
  await run('4 lifecycle', s4_lifecycle);
  await run('5 heartbeats', s5_heartbeats);
  await run('6 errors', s6_errors);
  await run('7 admin close and reopen', s7_admin_close_and_reopen);
  await run('8 logout', s8_logout);
  await run('9 close request', s9_close_request);
  await run('10 tenants', s10_tenants);
  await run('11 bad input', s11_bad_input);
  atmosphere.unsubscribe();
  clearTimeout(deadline);
  try { process.kill(srv.child.pid, 'SIGTERM'); } catch (e) { /* gone */ }
  await sleep(300);
  fs.rmSync(srv.data, { recursive: true, force: true });
  console.log(failures ? `tracker compat: ${failures} FAILED` : 'tracker compat: all passed');
  process.exit(failures);
}

main();
