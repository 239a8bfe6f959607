/**
 * local-sieve-child - runs a user's Sieve scripts and writes the Maildir with the user's
 * privileges (local-sieve.ts spawns it with the user's uid/gid when Postern runs as root).
 * Input: POSTERN_SIEVE_JOB (JSON, local-sieve.ts SieveJob) and the message on stdin. Output on
 * stdout, one JSON object per line: {"log": ...}, {"stored": [...]}, {"send": {kind, sender,
 * recipients, content (base64)}} for the parent to queue. Exit status follows <sysexits.h>: 0 ok,
 * 75 temporary (EX_TEMPFAIL), 73 cannot create/write (EX_CANTCREAT), the reason on stderr.
 */
import { deliverToMaildirWithSieve, MailError, type SieveSend } from '../lib-storage/mail-deliver.ts';
import type { SieveJob } from './local-sieve.ts';

async function main(): Promise<number> {
  const job = JSON.parse(process.env.POSTERN_SIEVE_JOB ?? '{}') as SieveJob;
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const out = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n'); };
  try {
    const r = await deliverToMaildirWithSieve(job.maildir, {
      user: job.user, home: job.home, envelope: job.envelope, content: Buffer.concat(chunks),
      settings: { ...job.settings, extensions: new Set(job.settings.extensions) },
      submit: async (m: SieveSend) => { out({ send: { kind: m.kind, sender: m.sender, recipients: m.recipients, content: m.content.toString('base64') } }); },
      log: { info: (l) => out({ log: l }), warn: (l) => out({ log: l }), error: (l) => out({ log: l }) },
    });
    out({ stored: r.stored });
    return 0;
  } catch (e) {
    const temp = e instanceof MailError ? e.code === 'TEMP' || e.code === 'NOQUOTA' || e.code === 'INUSE' : true;
    process.stderr.write(e instanceof MailError ? (e.detail ?? e.message) : (e as Error).message);
    return temp ? 75 : 73;
  }
}

main().then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(String(e)); process.exitCode = 75; });
