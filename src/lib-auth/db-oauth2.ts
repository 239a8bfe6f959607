/**
 * db-oauth2 - `passdb { driver = oauth2; args = /etc/dovecot/dovecot-oauth2.conf.ext }` as
 * Dovecot 2.3 runs it (auth/db-oauth2.c, lib-oauth2): the "password" is an OAuth 2.0 bearer
 * token (RFC 6750), from SASL OAUTHBEARER (RFC 7628) / XOAUTH2 or a plain LOGIN, checked at the
 * site's token endpoint:
 *
 *   tokeninfo_url = https://idp/tokeninfo?access_token=     GET, token appended (URL-escaped);
 *                                                           4xx = invalid token
 *   introspection_url = https://idp/introspect              RFC 7662, when tokeninfo_url is
 *   introspection_mode = auth | get | post                  unset, when its answer lacks the
 *                                                           username/active attribute, or with
 *                                                           force_introspection = yes
 *       auth (default): GET with "Authorization: Bearer TOKEN"
 *       get:            GET introspection_url + TOKEN [&client_id=..&client_secret=..]
 *       post:           POST token=TOKEN (application/x-www-form-urlencoded)
 *   username_attribute = email    the answer's field that must name the user logging in,
 *   username_format = %Lu         both sides normalised with this format first
 *   active_attribute / active_value   e.g. active = true (RFC 7662): otherwise "not active"
 *   scope = mail                  must be one of the space-separated words of `scope` (or `aud`)
 *   timeout_msecs = 0             0 = Postern's 30 s (Dovecot: its HTTP client's default)
 *   send_auth_headers = yes       X-Dovecot-Auth-Service / -Local / -Remote headers
 *   client_id, client_secret, debug, max_idle_time_msecs, max_parallel_connections,
 *   max_pipelined_requests, tls_* and rawlog_dir are accepted and have no effect (https://
 *   endpoints are checked against the system's CA list).
 *   local_validation_key_dict = fs:posix:prefix=DIR/ (with or without introspection_mode =
 *   local): JWTs are validated locally first (db-oauth2-jwt.ts); other tokens go to the URLs.
 *   grant_url/use_grant_password, pass_attrs and tls_allow_invalid_cert = yes are refused with
 *   an error naming them (not implemented).
 *
 * Answers (passdb results, as Dovecot maps them):
 *   ok         token valid, names this user, active, in scope
 *   mismatch   tokeninfo said 4xx, or the token is not a valid RFC 6750 b64token
 *   unknown    the token belongs to another user ("Username 'a' did not match 'b'")
 *   disabled   active_attribute missing/not active_value, or the scope does not match
 *   mismatch   also: no username attribute in the answer (RFC 7662's {"active":false})
 *   tempfail   (thrown) endpoint unreachable, timed out, 5xx, introspection non-2xx, invalid
 *              JSON, an `error` field
 * Postern also refuses a token whose `exp` (RFC 7662 §2.2, seconds since the epoch) has passed
 * even when the endpoint still calls it active (Dovecot does not look at `exp`).
 * Answers are at most 1 MB; only the top-level members of the JSON object count, numbers and
 * booleans as their text, as Dovecot's parser gives them.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../global/config-error.ts';
import type { Passdb, PassdbEntry } from './auth-db.ts';
import { expandVars } from './auth-var-expand.ts';
import { keyDirOf, validateJwt } from './db-oauth2-jwt.ts';
import type { AuthRequestInfo } from './user-directory.ts';

export interface OAuth2Conf {
  file: string;
  tokeninfoUrl: string;
  introspectionUrl: string;
  introspectionMode: 'auth' | 'get' | 'post' | 'local';
  /** local_validation_key_dict = fs:posix:prefix=DIR: JWTs checked locally (db-oauth2-jwt.ts). */
  keyDir?: string;
  usernameAttribute: string;
  usernameFormat: string;
  activeAttribute: string;
  activeValue: string;
  scope: string;
  clientId: string;
  clientSecret: string;
  forceIntrospection: boolean;
  sendAuthHeaders: boolean;
  timeoutMs: number;
}

const ACCEPTED = new Set(['local_validation_key_dict', 'tokeninfo_url', 'introspection_url', 'introspection_mode', 'username_attribute', 'username_format',
  'active_attribute', 'active_value', 'scope', 'client_id', 'client_secret', 'force_introspection', 'send_auth_headers',
  'timeout_msecs', 'max_idle_time_msecs', 'max_parallel_connections', 'max_pipelined_requests', 'debug', 'rawlog_dir',
  'tls_ca_cert_file', 'tls_ca_cert_dir', 'tls_cert_file', 'tls_key_file', 'tls_cipher_suite']);
const NOT_IMPLEMENTED = new Set(['grant_url', 'use_grant_password', 'pass_attrs', 'openid_configuration_url',
  'tls_allow_invalid_cert']);
/** Largest endpoint answer read. */
const MAX_ANSWER = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;

const yes = (v: string | undefined): boolean => v !== undefined && /^(yes|y|1|true)$/i.test(v);

export function parseOAuth2Conf(text: string, file: string): OAuth2Conf {
  const kv: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.replace(/\r$/, '').trim();
    if (t === '' || t.startsWith('#')) continue;
    if (t.includes('\0')) throw new ConfigError(file, i + 1, 'NUL byte in line');
    const eq = t.indexOf('=');
    if (eq < 0) throw new ConfigError(file, i + 1, `expected "key = value": ${t.slice(0, 80)}`);
    const key = t.slice(0, eq).trim();
    let value = t.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (NOT_IMPLEMENTED.has(key)) {
      if (value === '' || /^(no|n|0|false)$/i.test(value)) continue;
      throw new ConfigError(file, i + 1, `"${key}" is not supported by Postern's oauth2 passdb (use tokeninfo_url or introspection_url)`);
    }
    if (!ACCEPTED.has(key)) throw new ConfigError(file, i + 1, `unknown setting "${key}" (known: ${[...ACCEPTED].join(', ')})`);
    kv[key] = value;
  }
  const mode = kv.introspection_mode || 'auth';
  if (mode !== 'auth' && mode !== 'get' && mode !== 'post' && mode !== 'local') {
    throw new ConfigError(file, 0, `introspection_mode = ${mode}: must be auth, get, post or local`);
  }
  const conf: OAuth2Conf = {
    file,
    tokeninfoUrl: kv.tokeninfo_url ?? '',
    introspectionUrl: kv.introspection_url ?? '',
    introspectionMode: mode,
    usernameAttribute: kv.username_attribute || 'email',
    usernameFormat: kv.username_format || '%Lu',
    activeAttribute: kv.active_attribute ?? '',
    activeValue: kv.active_value ?? '',
    scope: kv.scope ?? '',
    clientId: kv.client_id ?? '',
    clientSecret: kv.client_secret ?? '',
    forceIntrospection: yes(kv.force_introspection),
    sendAuthHeaders: yes(kv.send_auth_headers),
    timeoutMs: Number(kv.timeout_msecs || 0) || DEFAULT_TIMEOUT_MS,
  };
  if (!/^\d*$/.test(kv.timeout_msecs ?? '')) throw new ConfigError(file, 0, `timeout_msecs = ${kv.timeout_msecs}: must be a number of milliseconds`);
  if (kv.local_validation_key_dict) {
    const dir = keyDirOf(kv.local_validation_key_dict);
    if (!dir) throw new ConfigError(file, 0, `local_validation_key_dict = ${kv.local_validation_key_dict}: only fs:posix:prefix=/DIRECTORY/ is supported`);
    conf.keyDir = dir;
  }
  if (mode === 'local' && !conf.keyDir) throw new ConfigError(file, 0, 'introspection_mode = local needs local_validation_key_dict = fs:posix:prefix=/DIRECTORY/');
  if (!conf.tokeninfoUrl && !conf.introspectionUrl && !conf.keyDir) {
    throw new ConfigError(file, 0, 'oauth2: tokeninfo_url, introspection_url or local_validation_key_dict must be given');
  }
  for (const u of [conf.tokeninfoUrl, conf.introspectionUrl]) {
    if (u && !/^https?:\/\//i.test(u)) throw new ConfigError(file, 0, `"${u}" is not an http:// or https:// URL`);
  }
  return conf;
}

export function loadOAuth2Conf(file: string): OAuth2Conf {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) {
    throw new ConfigError(file, 0, `cannot read oauth2 settings: ${(err as Error).message}`);
  }
  return parseOAuth2Conf(text, file);
}

/** RFC 6750 §2.1 b64token, as Dovecot's oauth2_valid_token checks it. */
export function validBearerToken(t: string): boolean {
  return t.length > 0 && /^[A-Za-z0-9\-._~+/]+=*$/.test(t);
}

/** Dovecot's http_url_escape_param: everything but unreserved characters %-escaped. */
function escapeParam(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

class TempFail extends Error {}

interface Answer { status: number; fields: Record<string, string> | undefined; error?: string }

async function call(conf: OAuth2Conf, method: 'GET' | 'POST', url: string, token: string, bearer: boolean, body: string | undefined, req?: AuthRequestInfo): Promise<Answer> {
  const headers: Record<string, string> = { 'user-agent': 'postern-oauth2-passdb', accept: 'application/json' };
  if (bearer) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  if (conf.sendAuthHeaders && req) {
    if (req.service) headers['x-dovecot-auth-service'] = req.service;
    if (req.localIp) headers['x-dovecot-auth-local'] = hostPort(req.localIp, req.localPort);
    if (req.remoteIp) headers['x-dovecot-auth-remote'] = hostPort(req.remoteIp, req.remotePort);
  }
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), conf.timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}), signal: ac.signal, redirect: 'follow' });
    } catch (e) {
      throw new TempFail(ac.signal.aborted ? `${url}: no answer within ${conf.timeoutMs} ms (timeout_msecs)` : `${url}: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}`);
    }
    const hi = Math.floor(res.status / 100);
    if (hi !== 2 && hi !== 4) {
      await res.body?.cancel().catch(() => {});
      throw new TempFail(`${url}: HTTP ${res.status} ${res.statusText}`);
    }
    const text = await readCapped(res, url, ac.signal);
    return { status: res.status, ...parseAnswer(text, url) };
  } finally {
    clearTimeout(timer);
  }
}

function hostPort(ip: string, port: number | undefined): string {
  const h = ip.includes(':') ? `[${ip}]` : ip;
  return port ? `${h}:${port}` : h;
}

async function readCapped(res: Response, url: string, signal: AbortSignal): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.byteLength;
      if (n > MAX_ANSWER) { await reader.cancel().catch(() => {}); throw new TempFail(`${url}: answer larger than ${MAX_ANSWER} bytes`); }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof TempFail) throw e;
    throw new TempFail(signal.aborted ? `${url}: answer not complete within the timeout (timeout_msecs)` : `${url}: ${(e as Error).message}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The top-level members of a JSON object, singular values as text; `error`(_description) noted. */
export function parseAnswer(text: string, url = ''): { fields: Record<string, string> | undefined; error?: string } {
  if (text.trim() === '') return { fields: {} };   // Dovecot: an empty answer is no error
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) {
    return { fields: undefined, error: `${url}: Invalid JSON in response: ${(e as Error).message}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { fields: undefined, error: `${url}: Invalid JSON in response: not an object` };
  const fields: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val === 'string') fields[k] = val;
    else if (typeof val === 'number' || typeof val === 'boolean') fields[k] = String(val);
    else if (val === null) fields[k] = '';
  }
  const err = fields.error_description ?? fields.error;
  return err !== undefined && 'error' in fields ? { fields, error: err } : { fields };
}

export type TokenVerdict = { result: 'ok' | 'mismatch' | 'unknown' | 'disabled'; reason?: string };

/** Check one token for `user` (already normalised by the directory). Throws TempFail-like Errors. */
export async function verifyToken(conf: OAuth2Conf, user: string, token: string, req?: AuthRequestInfo): Promise<TokenVerdict> {
  if (!validBearerToken(token)) return { result: 'mismatch', reason: 'not an RFC 6750 bearer token' };
  if (conf.keyDir) {
    const j = await validateJwt(conf.keyDir, token);
    if (j.kind === 'invalid') return { result: 'mismatch', reason: j.reason };
    if (j.kind === 'valid') return judge(conf, user, j.fields);
    if (!conf.tokeninfoUrl && !conf.introspectionUrl) return { result: 'mismatch', reason: 'Not a JWT token' };
  }
  let fields: Record<string, string> = {};
  let introspect = !conf.tokeninfoUrl;
  if (conf.tokeninfoUrl) {
    const a = await call(conf, 'GET', conf.tokeninfoUrl + escapeParam(token), token, conf.introspectionMode === 'auth', undefined, req);
    if (a.status >= 400 || a.error !== undefined || a.fields === undefined) {
      if (a.fields === undefined) throw new TempFail(a.error ?? 'invalid answer');
      return { result: 'mismatch', reason: a.error ?? `tokeninfo: HTTP ${a.status}` };
    }
    fields = a.fields;
    const haveAll = conf.usernameAttribute in fields && (!conf.activeAttribute || conf.activeAttribute in fields);
    introspect = !!conf.introspectionUrl && (conf.forceIntrospection || !haveAll);
  }
  if (introspect) {
    let url = conf.introspectionUrl, body: string | undefined, method: 'GET' | 'POST' = 'GET';
    if (conf.introspectionMode === 'get') {
      url += escapeParam(token);
      if (conf.clientId) url += `&client_id=${escapeParam(conf.clientId)}`;
      if (conf.clientSecret) url += `&client_secret=${escapeParam(conf.clientSecret)}`;
    } else if (conf.introspectionMode === 'post') {
      method = 'POST';
      body = `token=${escapeParam(token)}`;
    }
    const a = await call(conf, method, url, token, conf.introspectionMode === 'auth', body, req);
    if (a.status >= 400) throw new TempFail(`${conf.introspectionUrl}: HTTP ${a.status}`);
    if (a.fields === undefined || a.error !== undefined) throw new TempFail(a.error ?? 'invalid answer');
    fields = { ...fields, ...a.fields };
  }
  return judge(conf, user, fields);
}

/** db_oauth2_process_fields: user name, then active, then scope (and exp, a Postern addition). */
export function judge(conf: OAuth2Conf, user: string, fields: Record<string, string>): TokenVerdict {
  const named = fields[conf.usernameAttribute];
  // Dovecot 2.3 answers a plain failure here (an RFC 7662 {"active":false} has no name)
  if (named === undefined) return { result: 'mismatch', reason: `No username returned (username_attribute = ${conf.usernameAttribute})` };
  const want = expandVars(conf.usernameFormat, { user });
  const got = expandVars(conf.usernameFormat, { user: named });
  if (want !== got) return { result: 'unknown', reason: `Username '${want}' did not match '${got}'` };
  if (conf.activeAttribute) {
    const v = fields[conf.activeAttribute];
    if (v === undefined || (conf.activeValue !== '' && v !== conf.activeValue)) return { result: 'disabled', reason: 'User account is not active' };
  }
  if (conf.scope) {
    const words = (fields.scope ?? fields.aud ?? '').split(/\s+/);
    if (!words.includes(conf.scope)) return { result: 'disabled', reason: `Token is not valid for scope '${conf.scope}'` };
  }
  if (fields.exp !== undefined && /^\d+$/.test(fields.exp) && Number(fields.exp) * 1000 < Date.now()) {
    return { result: 'mismatch', reason: 'token expired (exp)' };
  }
  return { result: 'ok' };
}

/**
 * The passdb: lookup() cannot know users (a token server has no user list), so it answers for
 * every name; verifyBind() checks the token. A static userdb needs allow_all_users = yes with it,
 * as in Dovecot.
 */
export function oauth2Passdb(conf: OAuth2Conf): Passdb {
  return {
    driver: 'oauth2',
    defaultScheme: 'PLAIN',
    lookup: async (user: string): Promise<PassdbEntry> => ({ user, fields: {} }),
    verifyBind: async (entry, secret, req) => {
      const v = await verifyToken(conf, entry.user, secret, req);
      if (v.result === 'ok') return true;
      if (v.result === 'mismatch') return false;
      return { result: v.result, reason: v.reason ?? '' };
    },
    close: async () => {},
  };
}
