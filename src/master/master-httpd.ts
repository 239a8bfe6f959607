/**
 * master-httpd - the HTTP service (httpd/httpd.ts) as the master runs it, and HTTP_ROUTES: THE
 * TABLE of the features that answer HTTP requests. To add pages, add one line here (a lazy
 * import of your module's route provider; providers return [] when their feature is off):
 *
 *   async (ctx) => (await import('../metrics/metrics-route.ts')).metricsRoutes(ctx),
 *
 * Routes are matched in table order (lib-http/http-route.ts). The service runs in the master's
 * process (its default placement), so a provider here may read master-process state.
 */
import type { ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import type { HttpRoute } from '../lib-http/http-route.ts';
import { httpdService, httpdSettings } from '../httpd/httpd.ts';
import { acmeTlsAlpnIntercept } from '../lib-acme/acme-tls-alpn.ts';

export type HttpRouteProvider = (ctx: ServiceContext) => Promise<HttpRoute[]>;

export const HTTP_ROUTES: readonly HttpRouteProvider[] = [
  // ACME http-01 answers (docs/acme.md), when postern_acme_directory is set.
  async (ctx) => (await import('../lib-acme/acme-http-route.ts')).acmeHttpRoutes(ctx.config),
  // The MTA-STS policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (docs/mta-sts.md).
  async (ctx) => (await import('../lib-http/mta-sts-route.ts')).mtaStsRoutes(ctx.config),
  // Mail client set-up: Mozilla autoconfig, Autodiscover, .mobileconfig (docs/autoconfig.md).
  async (ctx) => (await import('../lib-http/autoconfig-route.ts')).autoconfigRoutes(ctx),
  // The web console under /console/ (docs/console.md), when postern_console = yes.
  async (ctx) => (await import('./master-console.ts')).consoleRoutesFor(ctx),
  // Prometheus metrics at /metrics (docs/metrics.md), when postern_metrics = yes.
  async (ctx) => (await import('./master-metrics.ts')).metricsRoutes(ctx),
];

export async function httpRoutes(ctx: ServiceContext): Promise<HttpRoute[]> {
  const all: HttpRoute[] = [];
  for (const p of HTTP_ROUTES) all.push(...await p(ctx));
  return all;
}

export const service: ServiceImpl = httpdService({
  routes: httpRoutes,
  // ACME tls-alpn-01 (RFC 8737) on the HTTPS listener, when postern_acme_challenges names it.
  tlsIntercept: (ctx) => acmeTlsAlpnIntercept(ctx.config, httpdSettings(ctx.config).timeoutMs),
});
