/**
 * login-proxy: which passdb answers proxy where (Dovecot's proxy, proxy_maybe, host, port,
 * destuser, pass, master, ssl, starttls, proxy_timeout), and Dovecot's %s %r %l variables that
 * select a passdb per protocol. The relaying itself is tested end to end against real backends
 * in test/e2e/proxy-backends.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROXY_TIMEOUT_MS, parseProxyTimeout, ProxyError, proxyDestination } from './login-proxy.ts';
import { expandVars } from '../lib-auth/auth-var-expand.ts';

const client = { remoteIp: '192.0.2.7', remotePort: 40000, localIp: '10.0.0.1', localPort: 143, sessionId: 'abc' };
const login = { user: 'alice@example.test', password: 'pw' };

test('no proxy field: log in here', () => {
  assert.equal(proxyDestination('imap', undefined, login, client), undefined);
  assert.equal(proxyDestination('imap', { host: '10.0.0.2' }, login, client), undefined);
  assert.equal(proxyDestination('imap', { proxy: 'n', host: '10.0.0.2' }, login, client), undefined);
});

test('proxy=y: host, default ports per protocol, destuser, pass, master, TLS settings', () => {
  assert.deepEqual(proxyDestination('imap', { proxy: 'y', host: '10.0.0.2' }, login, client),
    { host: '10.0.0.2', port: 143, tls: 'none', anyCert: false, destuser: 'alice@example.test', password: 'pw', timeoutMs: DEFAULT_PROXY_TIMEOUT_MS });
  assert.equal(proxyDestination('pop3', { proxy: '', host: 'b' }, login, client)!.port, 110);
  assert.equal(proxyDestination('sieve', { proxy: '', host: 'b' }, login, client)!.port, 4190);
  const d = proxyDestination('imap', { proxy: 'y', host: 'mail2.example.test', port: '10143', destuser: 'alice', pass: 'other', master: 'proxyadmin', ssl: 'any-cert', proxy_timeout: '5' }, login, client)!;
  assert.deepEqual(d, { host: 'mail2.example.test', port: 10143, tls: 'ssl', anyCert: true, destuser: 'alice', password: 'other', master: 'proxyadmin', timeoutMs: 5000 });
  assert.equal(proxyDestination('imap', { proxy: 'y', host: 'b', starttls: 'yes' }, login, client)!.tls, 'starttls');
  assert.equal(proxyDestination('imap', { proxy: 'y', host: 'b', ssl: 'yes' }, login, client)!.anyCert, false);
});

test('proxy_maybe: to this server (same IP, and the same port when given) logs in here', () => {
  assert.equal(proxyDestination('imap', { proxy_maybe: 'y', host: '10.0.0.1' }, login, client), undefined);
  assert.equal(proxyDestination('imap', { proxy_maybe: 'y', host: '10.0.0.1', port: '143' }, login, client), undefined);
  assert.equal(proxyDestination('imap', { proxy_maybe: 'y', host: '10.0.0.1', port: '1143' }, login, client)!.port, 1143);
  assert.equal(proxyDestination('imap', { proxy_maybe: 'y', host: '10.0.0.3' }, login, client)!.host, '10.0.0.3');
});

test('a proxy answer without a usable host or port is a temporary failure, never a local login', () => {
  const bad: Record<string, string>[] = [{ proxy: 'y' }, { proxy: 'y', host: '' }, { proxy: 'y', host: 'a b' }, { proxy: 'y', host: 'b', port: '0' },
    { proxy: 'y', host: 'b', port: '70000' }, { proxy: 'y', host: 'b', port: 'x' }, { proxy: 'y', host: 'b', proxy_timeout: 'soon' }];
  for (const f of bad) {
    assert.throws(() => proxyDestination('imap', f, login, client), (e) => e instanceof ProxyError && e.kind === 'tempfail', JSON.stringify(f));
  }
});

test('proxy_timeout: seconds by default, or with a unit', () => {
  assert.equal(parseProxyTimeout(undefined), DEFAULT_PROXY_TIMEOUT_MS);
  assert.equal(parseProxyTimeout('10'), 10_000);
  assert.equal(parseProxyTimeout('500 ms'), 500);
  assert.equal(parseProxyTimeout('2 secs'), 2000);
  assert.equal(parseProxyTimeout('1 min'), 60_000);
  assert.throws(() => parseProxyTimeout('-1'));
});

test('%s %r %l and their long names in passdb args (args = /etc/dovecot/proxy.%s)', () => {
  const vars = { user: 'Alice@Example.test', service: 'imap', remoteIp: '192.0.2.7', localIp: '10.0.0.1', remotePort: 40000, localPort: 143 };
  assert.equal(expandVars('/etc/dovecot/proxy.%s', vars), '/etc/dovecot/proxy.imap');
  assert.equal(expandVars('%{service}:%r:%l:%{rip}:%{lip}:%{rport}:%{lport}', vars), 'imap:192.0.2.7:10.0.0.1:192.0.2.7:10.0.0.1:40000:143');
  assert.equal(expandVars('%Us-%Ld', vars), 'IMAP-example.test');
  assert.equal(expandVars('/x/%s', { user: 'a' }), '/x/', 'unknown service: empty, as for a lookup without a login');
});
