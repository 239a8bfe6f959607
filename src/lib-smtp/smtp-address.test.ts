/**
 * smtp-address: Postfix's leniency for unquoted "@" in a local part, and strict mode.
 * (Reply codes for whole sessions are compared with real Postfix in
 * test/interop/smtpd-check-vs-postfix.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressSyntaxError, parsePathArg, quoteAddress } from './smtp-address.ts';

test('unquoted user@remote@ours is the address "user@remote"@ours, as Postfix parses it', () => {
  const a = parsePathArg('<user@remote.example@mx.example.test> NOTIFY=NEVER', { allowNull: false });
  assert.equal(a.address, 'user@remote.example@mx.example.test');
  assert.equal(a.params.get('NOTIFY'), 'NEVER');
  // Same internal form as the quoted spelling; quoted again on output.
  assert.equal(parsePathArg('<"user@remote.example"@mx.example.test>', { allowNull: false }).address, a.address);
  assert.equal(quoteAddress(a.address), '"user@remote.example"@mx.example.test');
});

test('strict_rfc821_envelopes refuses an unquoted "@" in the local part', () => {
  assert.throws(() => parsePathArg('<user@remote.example@mx.example.test>', { allowNull: false, strict: true }), AddressSyntaxError);
});

test('still refused: empty atoms around the extra "@", and characters outside atext', () => {
  for (const bad of ['<user@@mx.example.test>', '<@user@mx.example.test>', '<us er@remote@mx.example.test>', '<user@re(mote@mx.example.test>']) {
    assert.throws(() => parsePathArg(bad, { allowNull: false }), AddressSyntaxError, bad);
  }
});
