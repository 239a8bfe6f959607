/**
 * autoconfig-route - the HTTP service's pages for mail client set-up (docs/autoconfig.md), when
 * postern_autoconfig = yes; the documents are lib-http/autoconfig-formats.ts, the values
 * global/client-settings.ts.
 *
 *   GET  http(s)://autoconfig.DOMAIN/mail/config-v1.1.xml[?emailaddress=A]     Thunderbird
 *   GET  http(s)://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml[?emailaddress=A]
 *   POST http(s)://autodiscover.DOMAIN/autodiscover/autodiscover.xml           Outlook (POX)
 *        (also /Autodiscover/Autodiscover.xml, the spelling Outlook sends)
 *   GET  http(s)://HOST/apple/postern.mobileconfig?emailaddress=A              iOS / macOS
 *
 * The domain is the address's, else the Host's after "autoconfig." / "autodiscover."; a domain
 * not in postern_autoconfig_domains gets 404, so the pages say nothing about foreign domains.
 * The Autodiscover request body is at most 16 KiB (413 above it, enforced by httpd before the
 * route runs) and is never given to an XML parser: a DOCTYPE or ENTITY declaration is refused
 * (400, no entity is ever expanded: "billion laughs" costs nothing), and the one element read,
 * EMailAddress, is taken with a bounded pattern.
 */
import type { ServiceContext } from '../lib-master/master-service.ts';
import { autoconfigDomains, clientSettings } from '../global/client-settings.ts';
import type { HttpRequest, HttpResponse, HttpRoute } from './http-route.ts';
import { appleProfile, autodiscoverPox, mozillaConfig, parseEmailAddress } from './autoconfig-formats.ts';

export const AUTODISCOVER_MAX_BODY = 16384;

const NO_CACHE = { 'Cache-Control': 'no-store' };

function text(status: number, body: string): HttpResponse {
  return { status, type: 'text/plain; charset=utf-8', body: body + '\n' };
}

export function autoconfigRoutes(ctx: Pick<ServiceContext, 'config' | 'masterCf' | 'dovecot'>): HttpRoute[] {
  if (ctx.config.get('postern_autoconfig') !== 'yes') return [];
  const settings = clientSettings(ctx.config, ctx.masterCf, ctx.dovecot);
  const domains = new Set(autoconfigDomains(ctx.config));
  const hostDomain = (host: string): string => host.replace(/^(autoconfig|autodiscover)\./, '');

  /** The address and domain a request is about, or the refusal. */
  function subject(req: HttpRequest, given: string | null): { address?: string; domain: string } | HttpResponse {
    if (given !== null) {
      const a = parseEmailAddress(given);
      if (!a) return text(400, 'emailaddress is not an e-mail address');
      if (!domains.has(a.domain)) return text(404, `no mail service for ${a.domain} here`);
      return { address: a.address, domain: a.domain };
    }
    const d = hostDomain(req.host);
    if (!domains.has(d)) return text(404, 'no mail service for this host name here');
    return { domain: d };
  }

  const mozilla = (req: HttpRequest): HttpResponse => {
    const s = subject(req, req.query.get('emailaddress'));
    if ('status' in s) return s;
    return { status: 200, type: 'application/xml; charset=utf-8', headers: NO_CACHE, body: mozillaConfig(s.domain, settings) };
  };

  const autodiscover = (req: HttpRequest): HttpResponse => {
    const body = req.body.toString('utf8');
    if (/<!DOCTYPE|<!ENTITY/i.test(body)) return text(400, 'DOCTYPE and ENTITY declarations are not accepted');
    if (!/<Autodiscover\b[^>]{0,512}>/.test(body) || !/<Request>/.test(body)) return text(400, 'not an Autodiscover request');
    const m = /<EMailAddress>\s*([^<\s]{1,254})\s*<\/EMailAddress>/.exec(body);
    if (!m) return text(400, 'the request has no EMailAddress');
    const s = subject(req, m[1]!);
    if ('status' in s) return s;
    return { status: 200, type: 'application/xml; charset=utf-8', headers: NO_CACHE, body: autodiscoverPox(s.address!, settings) };
  };

  const apple = (req: HttpRequest): HttpResponse => {
    const given = req.query.get('emailaddress');
    if (given === null) return text(400, 'add ?emailaddress=you@example.com');
    const s = subject(req, given);
    if ('status' in s) return s;
    const profile = appleProfile(s.address!, s.domain, settings);
    if (!profile) return text(404, 'no IMAP/POP3 listener or no submission service is configured');
    return {
      status: 200, type: 'application/x-apple-aspen-config',
      headers: { ...NO_CACHE, 'Content-Disposition': `attachment; filename="${s.domain}.mobileconfig"` },
      body: profile,
    };
  };

  return [
    { name: 'autoconfig', host: (h) => h.startsWith('autoconfig.'), path: '/mail/config-v1.1.xml', handle: mozilla },
    { name: 'autoconfig', path: '/.well-known/autoconfig/mail/config-v1.1.xml', handle: mozilla },
    { name: 'autodiscover', path: '/autodiscover/autodiscover.xml', methods: ['POST'], maxBody: AUTODISCOVER_MAX_BODY, handle: autodiscover },
    { name: 'autodiscover', path: '/Autodiscover/Autodiscover.xml', methods: ['POST'], maxBody: AUTODISCOVER_MAX_BODY, handle: autodiscover },
    { name: 'mobileconfig', path: '/apple/postern.mobileconfig', handle: apple },
  ];
}
