/**
 * master.cf transport clones with their own `-o` overrides (Postfix master(5): each entry's
 * processes read main.cf, then apply their -o options), on the whole system and on real Postfix
 * with the same master.cf lines:
 *
 *   enc    unix - - n - - smtp -o smtp_tls_security_level=encrypt -o syslog_name=postfix/enc
 *   hello  unix - - n - 2 smtp -o smtp_helo_name=clone.example.net -o smtp_bind_address=127.0.0.2
 *
 * routed by transport_maps to Postfix's real smtp-sink(1), which offers no STARTTLS: mail through
 * `enc` is deferred with Postfix's words ("TLS is required, but was not offered by host ..."),
 * logged as enc/smtp; mail through `hello` arrives with the clone's EHLO name from 127.0.0.2;
 * mail through the stock `smtp` transport keeps main.cf's settings (plaintext, myhostname).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PosternSystem } from '../harness/postern-system.ts';
import { SmtpSink } from '../harness/smtp-sink.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { until } from '../harness/until.ts';

const run = promisify(execFile);
let sys: PosternSystem;
let sink: SmtpSink;

before(async () => {
  sink = await SmtpSink.start({ host: '127.0.0.1' });
  sys = await PosternSystem.start();
});
after(async () => { await sys?.destroy(); await sink?.stop(); });

const MASTER = (sinkPort: number) => `
enc       unix  -       -       n       -       -       smtp
  -o smtp_tls_security_level=encrypt
  -o syslog_name=postfix/enc
hello     unix  -       -       n       -       2       smtp
  -o smtp_helo_name=clone.example.net
  -o smtp_bind_address=127.0.0.2
`.replace(/PORT/g, String(sinkPort));

const MAIN = (sinkPort: number) => `
transport_maps = inline:{ enc.test=enc:[127.0.0.1]:${sinkPort}, helo.test=hello:[127.0.0.1]:${sinkPort}, plain.test=smtp:[127.0.0.1]:${sinkPort} }
smtp_helo_name = main.example.net
`;

async function send(port: number, rcpts: string[]): Promise<void> {
  const py = `
import smtplib, sys
for r in sys.argv[2:]:
    with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as c:
        c.sendmail("sender@example.org", [r], ("Subject: to %s\\r\\n\\r\\nbody\\r\\n" % r).encode())
`;
  await run('python3', ['-c', py, String(port), ...rcpts], { timeout: 30_000 });
}

/** smtp-sink's dumps: the EHLO argument and the client address of each message, by recipient. */
function sunk(): Map<string, { helo: string; addr: string }> {
  const out = new Map<string, { helo: string; addr: string }>();
  for (const f of readdirSync(sink.dir)) {
    const head = readFileSync(join(sink.dir, f), 'latin1');
    const rcpt = /^X-Rcpt-Args: <([^>]*)>/m.exec(head)?.[1] ?? '';
    out.set(rcpt, { helo: /^X-Helo-Args: (.*)$/m.exec(head)?.[1] ?? '', addr: /^X-Client-Addr: (.*)$/m.exec(head)?.[1] ?? '' });
  }
  return out;
}

const TLS_DEFER = /status=deferred \(TLS is required, but was not offered by host 127\.0\.0\.1\[127\.0\.0\.1\]\)/;

test('a transport clone uses its own -o overrides: encrypt defers without STARTTLS, smtp_helo_name and smtp_bind_address apply', async () => {
  appendFileSync(join(sys.configDir, 'master.cf'), MASTER(sink.port));
  appendFileSync(join(sys.configDir, 'main.cf'), MAIN(sink.port));
  const mark = sys.log.length;
  // A restart, not a reload: qmgr (in its thread) surely has the new master.cf and main.cf.
  await sys.stop();
  await PosternSystem.start(sys);
  await send(sys.ports.smtp, ['a@enc.test', 'b@helo.test', 'c@plain.test']);

  const got = await until(() => { const m = sunk(); return m.has('b@helo.test') && m.has('c@plain.test') ? m : undefined; }, 'two deliveries to smtp-sink');
  assert.deepEqual(got.get('b@helo.test'), { helo: 'clone.example.net', addr: '127.0.0.2' }, 'the clone\'s smtp_helo_name and smtp_bind_address');
  assert.equal(got.get('c@plain.test')?.helo, 'main.example.net', 'the stock smtp transport keeps main.cf\'s smtp_helo_name');
  assert.ok(!got.has('a@enc.test'), 'nothing is sent in plaintext through the encrypt clone');

  const line = await until(() => sys.log.slice(mark).split('\n').find((l) => l.includes('to=<a@enc.test>')), 'the enc delivery log line');
  assert.match(line, TLS_DEFER);
  assert.match(line, /\/enc\/smtp\[\d+\]: /, `logged under the clone's syslog_name: ${line}`);
  const q = (await sys.cli('queue', 'list'));
  assert.match(q.stdout + q.stderr, /a@enc\.test/, 'the message waits in the deferred queue');
});

test('real Postfix with the same master.cf lines: the same deferral text and the same EHLO', { skip: RealPostfix.unavailable() }, async () => {
  const pfSink = await SmtpSink.start({ host: '127.0.0.1' });
  const port = await freePort();
  const pf = await RealPostfix.start({
    mainCf: MAIN(pfSink.port),
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd\n${MASTER(pfSink.port)}`,
  });
  try {
    await send(port, ['a@enc.test', 'b@helo.test']);
    const line = await until(() => pf.log().split('\n').find((l) => l.includes('to=<a@enc.test>')), 'Postfix\'s enc log line');
    assert.match(line, TLS_DEFER);
    assert.match(line, /postfix\/enc\/smtp\[\d+\]: /);
    const dump = await until(() => {
      const f = readdirSync(pfSink.dir)[0];
      return f ? readFileSync(join(pfSink.dir, f), 'latin1') : undefined;
    }, 'Postfix\'s delivery to smtp-sink');
    assert.match(dump, /^X-Helo-Args: clone\.example\.net$/m);
    assert.match(dump, /^X-Client-Addr: 127\.0\.0\.2$/m);
  } finally {
    await pf.stop();
    await pfSink.stop();
  }
});
