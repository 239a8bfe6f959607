/**
 * sendmail-verify - `sendmail -bv addr...`: the address verification report. Postfix sends a
 * message in "verify" mode through qmgr and the delivery agents and MAILS the report to the
 * sender ("Mail Delivery Status Report will be mailed to <root>."). Postern prints the same
 * report on standard output instead, built from what trivial-rewrite decides (canonical
 * rewrite, address class, transport, nexthop, recipient table check), without sending mail:
 *
 *   This is the mail system at host mx.example.test.
 *
 *   Enclosed is the mail delivery report that you requested.
 *
 *                      The mail system
 *
 *   <joe@example.test> (expanded from <joe>): delivery via virtual: virtual address class, nexthop example.test
 *
 *   <nobody@example.test>: undeliverable: 5.1.1 User unknown in virtual mailbox table
 *
 * (Postfix's own report has the same frame and one paragraph per recipient, but its texts come
 * from the delivery agents: "delivery via virtual: delivers to maildir", "delivery via virtual:
 * unknown user: "nobody@example.test"", "connect to host[addr]:25: Connection refused".)
 *
 * Exit status: 0 when every address is deliverable, 67 (EX_NOUSER) when one is not, 75
 * (EX_TEMPFAIL) when a table lookup failed.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import { EX, type SendmailOptions } from './sendmail-args.ts';
import { extractAddresses } from './sendmail-input.ts';

export interface VerifyLine { recipient: string; text: string; status: 'deliverable' | 'undeliverable' | 'deferred' }

export async function verifyAddresses(config: MainConfig, addresses: string[], sender: string): Promise<VerifyLine[]> {
  const tr = await TrivialRewrite.open(config);
  const out: VerifyLine[] = [];
  for (const orig of addresses) {
    const addr = tr.rewrite(orig);
    const r = await tr.resolve(addr, sender);
    const who = `<${r.recipient || addr}>${(r.recipient || addr) !== orig ? ` (expanded from <${orig}>)` : ''}`;
    if (r.flags.fail) { out.push({ recipient: who, status: 'deferred', text: `deferred: 4.3.0 address resolver failure` }); continue; }
    if (r.flags.error) { out.push({ recipient: who, status: 'undeliverable', text: `undeliverable: 5.1.3 bad address syntax` }); continue; }
    if (r.relocated) { out.push({ recipient: who, status: 'undeliverable', text: `undeliverable: 5.1.6 user has moved to ${r.relocated}` }); continue; }
    let v;
    try { v = await tr.checkRecipient(r); } catch (e) {
      out.push({ recipient: who, status: 'deferred', text: `deferred: 4.3.0 ${(e as Error).message}` });
      continue;
    }
    if (!v.ok) { out.push({ recipient: who, status: 'undeliverable', text: `undeliverable: ${v.dsn} ${v.text}` }); continue; }
    out.push({ recipient: who, status: 'deliverable', text: `delivery via ${r.transport}: ${r.class} address class, nexthop ${r.nexthop || '(none)'}` });
  }
  return out;
}

export async function verify(o: SendmailOptions, config: MainConfig, sender: string): Promise<number> {
  const addrs = o.recipients.flatMap((r) => extractAddresses(r));
  if (addrs.length === 0) {
    process.stderr.write('sendmail: fatal: Recipient addresses must be specified on the command line (sendmail -bv address...)\n');
    return EX.USAGE;
  }
  const lines = await verifyAddresses(config, addrs, sender);
  const report = [
    `This is the mail system at host ${config.get('myhostname')}.`,
    '',
    'Enclosed is the mail delivery report that you requested.',
    '',
    '                   The mail system',
    '',
    // One paragraph per recipient, as in Postfix's report.
    ...lines.flatMap((l) => [`${l.recipient}: ${l.text}`, '']),
  ].join('\n');
  process.stdout.write(report);
  if (lines.some((l) => l.status === 'deferred')) return EX.TEMPFAIL;
  return lines.some((l) => l.status === 'undeliverable') ? EX.NOUSER : EX.OK;
}
