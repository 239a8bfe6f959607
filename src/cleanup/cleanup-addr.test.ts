import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { addExtension, mailAddrMap, MapResultError, splitAddressList } from './cleanup-addr.ts';
import { cleanupTables } from './cleanup-tables.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import { cleanupMap11 } from './cleanup-map11.ts';
import { cleanupMap1n } from './cleanup-map1n.ts';
import { CleanupError } from './cleanup-status.ts';
import { setLogSink } from '../util/msg.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const config = MainConfig.parse('myhostname = mx.example.test\nmyorigin = $myhostname\nmydestination = $myhostname, localhost\nrecipient_delimiter = +\nvirtual_alias_recursion_limit = 5\nvirtual_alias_expansion_limit = 4\n', '/nonexistent/main.cf', '/nonexistent');

test('table results split like mail_addr_crunch: commas, spaces, <>, quotes', () => {
  assert.deepEqual(splitAddressList('a@x, b@y  c@z'), ['a@x', 'b@y', 'c@z']);
  assert.deepEqual(splitAddressList('<a@x>,"b c"@y'), ['a@x', '"b c"@y']);
  assert.deepEqual(splitAddressList(' , ,'), []);
  assert.equal(addExtension('joe@example.com', '+tag'), 'joe+tag@example.com');
  assert.equal(addExtension('joe', '+tag'), 'joe+tag');
});

test('mail_addr_map: search order, extension propagation, @domain results, unqualified results', async () => {
  const t = await cleanupTables(config, TrivialRewrite.open);
  const maps = await Maps.open('inline:{ {a@example.com=joe}, {b@example.com=@other.example}, {@catch.example=jim@example.net}, {localuser=lu@example.net}, {bad@example.com=,} }');
  assert.deepEqual(await mailAddrMap(t, maps, 'a@example.com', true), ['joe@mx.example.test']);
  assert.deepEqual(await mailAddrMap(t, maps, 'a+x@example.com', true), ['joe+x@mx.example.test']);
  assert.deepEqual(await mailAddrMap(t, maps, 'a+x@example.com', false), ['joe@mx.example.test']);
  // @domain result: the user is prepended without the unmatched extension, then the extension is
  // propagated like for any result (mail_addr_map.c: mail_addr_crunch_opt(string, extension)).
  assert.deepEqual(await mailAddrMap(t, maps, 'b+x@example.com', true), ['b+x@other.example']);
  assert.deepEqual(await mailAddrMap(t, maps, 'b+x@example.com', false), ['b@other.example']);
  assert.deepEqual(await mailAddrMap(t, maps, 'u+x@catch.example', true), ['jim@example.net'], 'catch-all: no extension propagation');
  assert.deepEqual(await mailAddrMap(t, maps, 'localuser@mx.example.test', true), ['lu@example.net'], 'bare user for a local domain');
  assert.equal(await mailAddrMap(t, maps, 'localuser@remote.example', true), undefined, 'never for a remote domain');
  await assert.rejects(mailAddrMap(t, maps, 'bad@example.com', true), MapResultError);
});

test('cleanup_map11: chains up to 10 lookups, stops at self-mapping, warns on multi-valued results', async () => {
  const t = await cleanupTables(config, TrivialRewrite.open);
  const maps = await Maps.open('inline:{ {a@x.example=b@x.example}, {b@x.example=c@x.example, d@x.example}, {self@x.example=self@x.example}, {l1@x.example=l2@x.example}, {l2@x.example=l1@x.example} }', { paramName: 'canonical_maps' });
  logs.length = 0;
  assert.equal(await cleanupMap11(t, 'Q', maps, 'a@x.example', true), 'c@x.example');
  assert.ok(logs.some((l) => l.endsWith('warning: Q: multi-valued canonical_maps entry for b@x.example')), logs.join('\n'));
  assert.equal(await cleanupMap11(t, 'Q', maps, 'self@x.example', true), 'self@x.example');
  await assert.rejects(cleanupMap11(t, 'Q', maps, 'l1@x.example', true), (e: CleanupError) => e.reject.code === 451 && e.reject.enh === '4.3.0');
  assert.ok(logs.some((l) => l.endsWith('warning: Q: unreasonable canonical_maps map nesting for l1@x.example -- message not accepted, try again later')));
});

test('cleanup_map1n: self-expansion once, limits, and a broken table', async () => {
  const t = await cleanupTables(config, TrivialRewrite.open);
  const maps = await Maps.open('inline:{ {list@x.example=self@x.example, a@y.example}, {self@x.example=self@x.example, b@y.example}, {big@x.example=1@y, 2@y, 3@y, 4@y, 5@y} }', { paramName: 'virtual_alias_maps' });
  assert.deepEqual(await cleanupMap1n(t, 'Q', maps, 'list@x.example', true), ['self@x.example', 'a@y.example', 'b@y.example']);
  await assert.rejects(cleanupMap1n(t, 'Q', maps, 'big@x.example', true), (e: CleanupError) => e.reject.text === 'Alias expansion error');
  const broken = await Maps.open('texthash:/nonexistent/virtual', { paramName: 'virtual_alias_maps', warn: () => {} });
  await assert.rejects(cleanupMap1n(t, 'Q', broken, 'x@x.example', true), (e: CleanupError) => e.reject.enh === '4.3.0');
});
