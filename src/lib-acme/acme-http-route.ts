/**
 * acme-http-route - the HTTP service's answer to ACME http-01 validation (RFC 8555 §8.3):
 * GET http://NAME/.well-known/acme-challenge/TOKEN → the key authorization the order process
 * wrote to STATE/http-01/TOKEN (acme-issue.ts). Plain HTTP and HTTPS alike (a CA follows no
 * redirect here, and Let's Encrypt validates on port 80). Only tokens of the base64url alphabet
 * are looked up (§8.1), so a request can name no other file; anything else is 404.
 * Served whenever postern_acme_directory is set (`postern cert renew` relies on the running
 * master's HTTP service too).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MainConfig } from '../global/mail-conf.ts';
import type { HttpRoute } from '../lib-http/http-route.ts';

export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';

export function acmeHttpRoutes(config: MainConfig): HttpRoute[] {
  if (!config.get('postern_acme_directory').trim()) return [];
  const dir = join(config.get('postern_acme_state_directory'), 'http-01');
  return [{
    name: 'acme-http-01',
    path: ACME_CHALLENGE_PATH,
    prefix: true,
    async handle(req) {
      const token = req.path.slice(ACME_CHALLENGE_PATH.length);
      if (!/^[A-Za-z0-9_-]{1,200}$/.test(token)) return { status: 404, body: 'Not Found\n' };
      try {
        return { status: 200, type: 'application/octet-stream', body: await readFile(join(dir, token)) };
      } catch {
        return { status: 404, body: 'Not Found\n' };
      }
    },
  }];
}
