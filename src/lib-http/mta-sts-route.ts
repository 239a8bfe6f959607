/**
 * mta-sts-route - the HTTP service's page https://mta-sts.DOMAIN/.well-known/mta-sts.txt
 * (RFC 8461 §3.3): the policy of global/mta-sts-policy.ts for each domain of
 * postern_mta_sts_domains, HTTPS only (§3.3: "HTTPS GET"; a plain-HTTP request is not answered
 * with a policy), Content-Type text/plain, no redirect. `mode: none` is served as such (the
 * way to withdraw a policy, RFC 8461 §8.3); nothing is served when no domain is listed.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { mtaStsDomains, publishedMtaSts } from '../global/mta-sts-policy.ts';
import type { HttpRoute } from './http-route.ts';

export function mtaStsRoutes(config: MainConfig): HttpRoute[] {
  const policy = publishedMtaSts(config);
  const hosts = new Set(mtaStsDomains(config).map((d) => `mta-sts.${d}`));
  if (hosts.size === 0) return [];
  return [{
    name: 'mta-sts',
    host: (h) => hosts.has(h),
    path: '/.well-known/mta-sts.txt',
    scheme: 'https',
    handle: () => ({ status: 200, type: 'text/plain; charset=utf-8', body: policy.text }),
  }];
}
