/**
 * master-metrics: the /metrics route is absent unless postern_metrics = yes, and its basic
 * authentication refuses what it should (the end-to-end test scrapes it with Prometheus).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MainConfig } from '../global/mail-conf.ts';
import type { ServiceContext } from '../lib-master/master-service.ts';
import { basicAuthOk, metricsRoutes } from './master-metrics.ts';

const users = new Map([['prom', 's3cret'], ['other', 'pa:ss']]);
const auth = (v: string | undefined) => basicAuthOk({ headers: { authorization: v } }, users);
const b64 = (s: string) => Buffer.from(s).toString('base64');

test('basic authentication', () => {
  assert.equal(auth(`Basic ${b64('prom:s3cret')}`), true);
  assert.equal(auth(`basic   ${b64('other:pa:ss')}`), true, 'a colon in the password');
  assert.equal(auth(`Basic ${b64('prom:s3cre')}`), false);
  assert.equal(auth(`Basic ${b64('prom:s3cret ')}`), false);
  assert.equal(auth(`Basic ${b64('nobody:s3cret')}`), false);
  assert.equal(auth(`Basic ${b64('prom')}`), false, 'no colon');
  assert.equal(auth(`Bearer ${b64('prom:s3cret')}`), false);
  assert.equal(auth('Basic %%%'), false);
  assert.equal(auth(`Basic ${'A'.repeat(5000)}`), false, 'over-long');
  assert.equal(auth(undefined), false);
});

test('no route unless postern_metrics = yes', () => {
  const ctx = { config: MainConfig.parse('') } as unknown as ServiceContext;
  assert.deepEqual(metricsRoutes(ctx), []);
});
