/**
 * Open relay (issue 8 item 3), through the running system from OUTSIDE mynetworks: main.cf gets
 * mynetworks = 127.0.0.1/32 and the clients connect from 127.0.0.2. Every classic relay-test
 * address form (the ones relay testers such as Jack's / abuse.net's relay test use: percent
 * hack, quoted local part, source route, double @, bang path, IP literals, case and trailing
 * dot variations), with the null, a local and a remote sender, must be refused at RCPT; so must
 * a remote recipient on the submission port without AUTH and with a wrong password. With the
 * right password it is accepted (permit_sasl_authenticated: not an open relay). Afterwards
 * nothing was queued and the log shows no delivery attempt to anything but the local Maildirs.
 * The same RCPT from 127.0.0.1 (inside mynetworks) IS accepted, so the refusals come from the
 * relay rules and not from a broken setup.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PosternSystem } from '../harness/postern-system.ts';
import { LineChat } from '../harness/line-chat.ts';

const OUTSIDE = '127.0.0.2';
const REMOTE = 'relay-target.example.net';
let sys: PosternSystem;

before(async () => {
  sys = await PosternSystem.start();
  const r = (await sys.cli('conf', '-e', 'mynetworks=127.0.0.1/32'));
  assert.equal(r.status, 0, r.stderr);
  await sys.stop();
  await PosternSystem.start(sys);
});
after(async () => { await sys?.destroy(); });

const FORMS = [
  `victim@${REMOTE}`,
  `VICTIM@${REMOTE.toUpperCase()}`,
  `victim@${REMOTE}.`,
  `victim%${REMOTE}@example.test`,
  `victim%${REMOTE}@EXAMPLE.TEST`,
  `victim%${REMOTE}@example.test.`,
  `postmaster%${REMOTE}@example.test`,
  `"victim@${REMOTE}"@example.test`,
  `"victim%${REMOTE}"@example.test`,
  `@example.test:victim@${REMOTE}`,
  `@example.test,@${REMOTE}:victim@${REMOTE}`,
  `victim@${REMOTE}@example.test`,
  `${REMOTE}!victim@example.test`,
  `${REMOTE}!victim`,
  `victim@[127.0.0.1]`,
  `victim%${REMOTE}@[127.0.0.1]`,
  `victim@[IPv6:::1]`,
  `victim@[192.0.2.1]`,
  `victim%${REMOTE}@[192.0.2.1]`,
  `victim@[IPv6:2001:db8::1]`,
  `"victim@[192.0.2.1]"@example.test`,
  `victim@localhost`,
  `victim%${REMOTE}@localhost`,
];
const SENDERS = ['', 'postmaster@example.test', `spammer@${REMOTE}`];

async function rcptFrom(local: string | undefined, port: number, sender: string, rcpt: string): Promise<string> {
  const { c } = await LineChat.greet(port, local ? { localAddress: local } : {});
  try {
    await c.cmd('EHLO relaytest.example.net');
    const m = await c.cmd(`MAIL FROM:<${sender}>`);
    if (!m.startsWith('250')) return `MAIL ${m}`;
    return await c.cmd(`RCPT TO:<${rcpt}>`);
  } finally {
    c.close();
  }
}

test('inside mynetworks (127.0.0.1) relaying is allowed: the setup can say yes', async () => {
  assert.match(await rcptFrom('127.0.0.1', sys.ports.smtp, 'postmaster@example.test', `victim@${REMOTE}`), /^250/);
});

test('from outside mynetworks every relay-test address form is refused at RCPT', async (t) => {
  const accepted: string[] = [];
  const replies = new Map<string, number>();
  const odd = new Map<string, string>();
  let n = 0;
  for (const sender of SENDERS) {
    for (const rcpt of FORMS) {
      const r = await rcptFrom(OUTSIDE, sys.ports.smtp, sender, rcpt);
      n++;
      if (/^2/.test(r)) accepted.push(`<${sender}> → <${rcpt}>: ${r}`);
      if (!/Relay access denied$/.test(r) && sender === '') odd.set(rcpt, r);
      const code = r.replace(/^MAIL /, '').slice(0, 3);
      replies.set(code, (replies.get(code) ?? 0) + 1);
    }
  }
  t.diagnostic(`${n} relay attempts from ${OUTSIDE}: replies ${JSON.stringify(Object.fromEntries(replies))}, accepted ${accepted.length}`);
  assert.deepEqual(accepted, []);
  for (const [k, v] of odd) t.diagnostic(`  ${k} → ${v}`);
  // the plain case gets Postfix's text (default smtpd_relay_restrictions ends in defer_unauth_destination: 454)
  assert.equal(await rcptFrom(OUTSIDE, sys.ports.smtp, 'postmaster@example.test', `victim@${REMOTE}`),
    `454 4.7.1 <victim@${REMOTE}>: Relay access denied`);
});

test('submission: no AUTH or a wrong password → refused; the right password → allowed (permit_sasl_authenticated)', async (t) => {
  const attempt = async (auth: 'none' | 'wrong' | 'right'): Promise<{ auth: string; rcpt: string }> => {
    const { c } = await LineChat.greet(sys.ports.submission, { localAddress: OUTSIDE });
    try {
      await c.cmd('EHLO relaytest.example.net');
      const tls = await c.starttls();
      assert.match(tls, /^220/);
      const ehlo = await c.cmd('EHLO relaytest.example.net');
      assert.match(ehlo, /AUTH .*PLAIN/);
      let a = '';
      if (auth !== 'none') {
        const pw = auth === 'right' ? sys.password : 'wrong-password';
        a = await c.cmd(`AUTH PLAIN ${Buffer.from(`\0postmaster@example.test\0${pw}`).toString('base64')}`);
      }
      const m = await c.cmd('MAIL FROM:<postmaster@example.test>');
      const rcpt = m.startsWith('250') ? await c.cmd(`RCPT TO:<victim@${REMOTE}>`) : `MAIL ${m}`;
      await c.cmd('RSET').catch(() => '');
      return { auth: a, rcpt };
    } finally {
      c.close();
    }
  };
  const none = await attempt('none');
  const wrong = await attempt('wrong');
  const right = await attempt('right');
  t.diagnostic(`submission from ${OUTSIDE}: no AUTH → ${none.rcpt}; wrong password → ${wrong.auth} / ${wrong.rcpt}; right password → ${right.auth} / ${right.rcpt}`);
  assert.doesNotMatch(none.rcpt, /^2/);
  assert.match(wrong.auth, /^535/);
  assert.doesNotMatch(wrong.rcpt, /^2/);
  assert.match(right.auth, /^235/);
  assert.match(right.rcpt, /^250/);
  // AUTH is not offered on port 25 in the default master.cf; trying it must not authenticate
  const { c } = await LineChat.greet(sys.ports.smtp, { localAddress: OUTSIDE });
  await c.cmd('EHLO relaytest.example.net');
  const a25 = await c.cmd(`AUTH PLAIN ${Buffer.from(`\0postmaster@example.test\0${sys.password}`).toString('base64')}`);
  await c.cmd('MAIL FROM:<postmaster@example.test>');
  const r25 = await c.cmd(`RCPT TO:<victim@${REMOTE}>`);
  c.close();
  t.diagnostic(`port smtp: AUTH → ${a25}; RCPT → ${r25}`);
  assert.doesNotMatch(a25, /^235/);
  assert.doesNotMatch(r25, /^2/);
});

test('full transactions from outside: nothing queued for a remote destination, no delivery attempt', async (t) => {
  // Try to get a message through with DATA after each form (pipelined, as spammers do).
  let dataAccepted = 0;
  for (const rcpt of FORMS) {
    const { c } = await LineChat.greet(sys.ports.smtp, { localAddress: OUTSIDE });
    c.send(`EHLO relaytest.example.net\r\nMAIL FROM:<spammer@${REMOTE}>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
    const replies = [await c.reply(), await c.reply(), await c.reply(), await c.reply()];
    if (replies[3]!.startsWith('354')) {
      c.send(`Subject: relay test\r\n\r\nrelay test\r\n.\r\n`);
      if ((await c.reply()).startsWith('250')) dataAccepted++;
    }
    c.close();
  }
  await new Promise((r) => setTimeout(r, 500));
  const q = (await sys.cli('queue', 'list')).stdout.trim();
  const deliveries = (sys.log.match(/ to=<[^>]*>, relay=(?!virtual)[^,]*/g) ?? []);
  t.diagnostic(`${FORMS.length} pipelined transactions: ${dataAccepted} messages accepted; queue: ${q.split('\n').pop()}; non-local delivery attempts in the log: ${deliveries.length}`);
  assert.equal(dataAccepted, 0);
  assert.equal(q, 'Mail queue is empty');
  assert.deepEqual(deliveries, []);
});
