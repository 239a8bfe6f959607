/**
 * Tests for rewrite.ts: the "canonical" rewrite (Postfix rewrite_tree()) that turns what users
 * type into user@fully.qualified.domain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteAddress, stripSourceRoute, type RewriteParams } from './rewrite.ts';
import { needsQuote, stripExtension, validHostname, validMailhostLiteral, normalizeIp } from '../global/address-syntax.ts';

const P: RewriteParams = {
  myorigin: 'example.net', mydomain: 'example.net',
  append_at_myorigin: true, append_dot_mydomain: true, swap_bangpath: true, allow_percent_hack: true,
};

test('unqualified user gets @$myorigin (append_at_myorigin)', () => {
  assert.equal(rewriteAddress(P, 'joe'), 'joe@example.net');
  assert.equal(rewriteAddress({ ...P, append_at_myorigin: false }, 'joe'), 'joe');
  assert.equal(rewriteAddress({ ...P, myorigin: 'mx.example.net' }, 'joe'), 'joe@mx.example.net');
});

test('user@host gets .$mydomain only with append_dot_mydomain and a dot-less, non-literal domain', () => {
  assert.equal(rewriteAddress(P, 'joe@mail'), 'joe@mail.example.net');
  assert.equal(rewriteAddress({ ...P, append_dot_mydomain: false }, 'joe@mail'), 'joe@mail');
  assert.equal(rewriteAddress(P, 'joe@mail.example.org'), 'joe@mail.example.org');
  assert.equal(rewriteAddress(P, 'joe@[192.0.2.1]'), 'joe@[192.0.2.1]');
  assert.equal(rewriteAddress(P, 'joe@'), 'joe@', 'a broken form ending in @ is left alone for accurate diagnostics');
});

test('one trailing dot is stripped, dot-dot and @. are left alone', () => {
  assert.equal(rewriteAddress(P, 'joe@example.com.'), 'joe@example.com');
  assert.equal(rewriteAddress(P, 'joe@example.com..'), 'joe@example.com..');
  assert.equal(rewriteAddress(P, 'joe@.'), 'joe@.');
});

test('bang paths and the percent hack', () => {
  assert.equal(rewriteAddress(P, 'host.example.org!joe'), 'joe@host.example.org');
  assert.equal(rewriteAddress(P, 'a.example!b.example!joe'), 'b.example!joe@a.example', 'only the first ! is swapped');
  assert.equal(rewriteAddress(P, 'joe%a.example%b.example'), 'joe%a.example@b.example', 'the last % becomes @');
  assert.equal(rewriteAddress(P, 'b.example!joe%a.example'), 'joe%a.example@b.example', 'bang before percent');
  assert.equal(rewriteAddress({ ...P, swap_bangpath: false }, 'host!joe'), 'host!joe@example.net');
  assert.equal(rewriteAddress({ ...P, allow_percent_hack: false }, 'joe%host'), 'joe%host@example.net');
  assert.equal(rewriteAddress(P, 'joe%host'), 'joe@host.example.net');
});

test('operators inside a quoted local-part are ordinary characters', () => {
  // internal form of "joe smith!x" — it needs quoting (space), so no bang swap
  assert.equal(rewriteAddress(P, 'joe smith!x'), 'joe smith!x@example.net');
  assert.equal(rewriteAddress(P, 'a b%c'), 'a b%c@example.net');
});

test('source routes are dropped (RFC 5321 appendix C)', () => {
  assert.equal(stripSourceRoute('@a.example,@b.example:joe@c.example'), 'joe@c.example');
  assert.equal(rewriteAddress(P, '@a.example:joe@c.example'), 'joe@c.example');
  assert.equal(rewriteAddress(P, '@a.example:joe'), 'joe@example.net');
  assert.equal(stripSourceRoute('@a.example:'), '@a.example:', 'a colon at the end is no route');
});

test('the empty address stays empty, a lone @ becomes empty', () => {
  assert.equal(rewriteAddress(P, ''), '');
  assert.equal(rewriteAddress(P, '@'), '');
});

test('hostile input: NUL, CR/LF and a 1 MB address are rewritten without crashing', () => {
  assert.equal(rewriteAddress(P, 'jo\0e'), 'jo\0e@example.net');
  const big = 'a'.repeat(1 << 20);
  const t = Date.now();
  assert.equal(rewriteAddress(P, big).length, big.length + '@example.net'.length);
  assert.equal(rewriteAddress(P, '%'.repeat(1 << 20)).length > 0, true);
  assert.ok(Date.now() - t < 2000, 'linear time');
});

test('address-syntax: quoting, host names, literals, extensions', () => {
  assert.equal(needsQuote('joe.smith'), false);
  assert.equal(needsQuote('joe smith'), true);
  assert.equal(needsQuote('.joe'), true);
  assert.equal(needsQuote('jo..e'), true);
  assert.equal(needsQuote('a@b'), true);
  assert.equal(needsQuote('a%b!c'), false);
  assert.equal(validHostname('mail.example.com'), true);
  assert.equal(validHostname('example.com.'), false);
  assert.equal(validHostname('a'.repeat(64) + '.com'), false, 'label over 63');
  assert.equal(validHostname('x.'.repeat(128) + 'com'), false, 'name over 255');
  assert.equal(validHostname('1.2.3.4'), false, 'all-numeric');
  assert.equal(validHostname('ex-ample.com'), true);
  assert.equal(validHostname('example-.com'), false);
  assert.equal(validHostname('exa\0mple.com'), false);
  assert.equal(validMailhostLiteral('[192.0.2.1]'), '192.0.2.1');
  assert.equal(validMailhostLiteral('[IPv6:2001:db8::1]'), '2001:db8::1');
  assert.equal(validMailhostLiteral('[ipv6:::1]'), '::1');
  assert.equal(validMailhostLiteral('[2001:db8::1]'), undefined);
  assert.equal(normalizeIp('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(stripExtension('joe+news@example.com', '+'), 'joe@example.com');
  assert.equal(stripExtension('joe+@example.com', '+'), 'joe@example.com');
  assert.equal(stripExtension('+joe@example.com', '+'), undefined, 'no empty user');
  assert.equal(stripExtension('owner-list@example.com', '-'), undefined);
  assert.equal(stripExtension('list-request@example.com', '-'), undefined);
  assert.equal(stripExtension('joe-x@example.com', '+-'), 'joe@example.com', 'several delimiter characters');
  assert.equal(stripExtension('joe@example.com', ''), undefined);
});
