/**
 * authres-bench - what inbound verification (docs/authres.md: SPF of MAIL FROM and HELO, DKIM,
 * DMARC, ARC, the Authentication-Results header) costs the SMTP accept rate: `authres-accept-20`
 * is smtp-accept-20 (bench-smtp-accept.ts: smtp-source, 2 KB messages, 20 sessions, fsync on)
 * against two Postern smtpd children on the same site, both treating 127.0.0.1 as a client from
 * outside (mynetworks = 192.0.2.0/24), one with postern_authres_verify = no (the "reference"
 * column) and one with verification on. DNS is a loopback server in this process answering for
 * the sender's domain (SPF pass for 127.0.0.0/8, DMARC p=none); its cache is warm after the
 * untimed warm-up round, as on a busy server. The ratio (on/off) is the share of the accept
 * rate verification keeps.
 *
 *   npm run bench -- authres-accept          # or with --messages 500 for a quick check
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsServer } from '../test/harness/dns-server.ts';
import { writeSite } from './bench-site.ts';
import { startPostern } from './bench-smtp-accept.ts';
import type { PairedScenario } from './bench-scenario.ts';

export function authresAcceptScenario(sessions = 20): PairedScenario {
  return {
    kind: 'paired',
    name: `authres-accept-${sessions}`,
    description: `SMTP accept rate with inbound verification on vs off (SPF, DKIM, DMARC, ARC; warm DNS cache), 2 KB messages, ${sessions} sessions (smtp-source)`,
    metric: 'messages accepted/s',
    unit: 'msg/s',
    reference: 'Postern, verification off',
    async start(o, cleanup) {
      const dns = await DnsServer.start({
        'example.org': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'], A: ['127.0.0.1'] },
        '_dmarc.example.org': { TXT: ['v=DMARC1; p=none'] },
      });
      cleanup.add('stop the DNS server', () => dns.stop());
      const dir = mkdtempSync(join(tmpdir(), 'postern-bench-authres-'));
      if (!o.keep) cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
      const site = writeSite(dir);
      const common = `# bench: 127.0.0.1 is a client from outside\nmynetworks = 192.0.2.0/24\npostern_dns_servers = 127.0.0.1:${dns.port}\n`;
      const reference = await startPostern(site, sessions, o, cleanup, `${common}postern_authres_verify = no\n`, 'postern-verify-off');
      const postern = await startPostern(site, sessions, o, cleanup, `${common}postern_authres_verify = yes\n`, 'postern-verify-on');
      return { reference, postern };
    },
  };
}
