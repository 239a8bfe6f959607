import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyEndpoint, parseProxyOptions } from './smtpd-proxy.ts';

test('smtpd_proxy_filter: the forms Postfix accepts (inet_connect, unix_connect)', () => {
  assert.deepEqual(proxyEndpoint('127.0.0.1:10025', '/q'), { host: '127.0.0.1', port: 10025 });
  assert.deepEqual(proxyEndpoint('inet:127.0.0.1:10025', '/q'), { host: '127.0.0.1', port: 10025 });
  assert.deepEqual(proxyEndpoint('INET:[::1]:10025', '/q'), { host: '::1', port: 10025 });
  assert.deepEqual(proxyEndpoint('10025', '/q'), { host: 'localhost', port: 10025 });
  assert.deepEqual(proxyEndpoint(':10025', '/q'), { host: 'localhost', port: 10025 });
  assert.deepEqual(proxyEndpoint('filter.example:10025', '/q'), { host: 'filter.example', port: 10025 });
  assert.deepEqual(proxyEndpoint('unix:/run/filter.sock', '/q'), { path: '/run/filter.sock' });
  assert.deepEqual(proxyEndpoint('unix:private/filter', '/var/spool/postfix'), { path: '/var/spool/postfix/private/filter' });
  for (const bad of ['', 'unix:', '127.0.0.1:smtp', '127.0.0.1:0', '127.0.0.1:70000', 'host:']) assert.equal(proxyEndpoint(bad, '/q'), undefined, bad);
});

test('smtpd_proxy_options: speed_adjust, unknown words ignored', () => {
  assert.deepEqual(parseProxyOptions([]), { speedAdjust: false });
  assert.deepEqual(parseProxyOptions(['speed_adjust']), { speedAdjust: true });
  assert.deepEqual(parseProxyOptions(['Speed_Adjust', 'bogus']), { speedAdjust: true });
});
