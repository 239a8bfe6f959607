/**
 * ManageSieve in the whole system: `postern start` on an empty configuration directory runs it
 * (the embedded default enables `protocols = ... sieve` on an unprivileged loopback port), the
 * master's session skeleton and auth penalty serve it, and scripts land in Pigeonhole's layout
 * beside the user's Maildir without showing up as IMAP folders; mail then sent through SMTP is
 * filed by that script at delivery (virtual(8) runs it, as Dovecot's LDA would). Real clients:
 * Python's socket/ssl (STARTTLS against the self-signed certificate), smtplib and imaplib.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem, type PortName } from '../harness/postern-system.ts';
import { MANAGESIEVE_PY_READER } from '../harness/managesieve-py.ts';

let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); });
after(async () => { await sys?.destroy(); });

const PY = String.raw`
import json, socket, ssl, sys, re, base64, time
port, user, pw, imap, smtp_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection(('127.0.0.1', port), timeout=20)
${MANAGESIEVE_PY_READER}
def cmd(b):
    s.sendall(b + b'\r\n'); return response()
out = {'greeting': response()}
out['starttls'] = cmd(b'STARTTLS')
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(s); buf = b''
out['tls'] = response()
t0 = time.time()
out['wrong'] = cmd(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(b'\0' + user.encode() + b'\0wrong') + b'"')
out['wrong_secs'] = time.time() - t0
out['login'] = cmd(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(b'\0' + user.encode() + b'\0' + pw.encode()) + b'"')
script = b'require ["fileinto", "mailbox"];\r\nif header :contains "subject" "[list]" { fileinto :create "Lists"; }\r\n'
out['put'] = cmd(b'PUTSCRIPT "lists" {%d+}\r\n' % len(script) + script)
out['active'] = cmd(b'SETACTIVE "lists"')
out['list'] = cmd(b'LISTSCRIPTS')
out['logout'] = cmd(b'LOGOUT')
import imaplib, smtplib, threading
# Mail through SMTP: virtual(8) runs the active script at delivery.
smtp = smtplib.SMTP('127.0.0.1', smtp_port)
smtp.sendmail('someone@example.net', [user], b'From: someone@example.net\r\nTo: ' + user.encode() + b'\r\nSubject: [list] hello\r\n\r\nbody\r\n')
smtp.quit()
m = imaplib.IMAP4('127.0.0.1', imap)
m.login(user, pw)
deadline = time.time() + 20
while time.time() < deadline:
    typ, data = m.status('Lists', '(MESSAGES)')
    if typ == 'OK' and b'MESSAGES 1' in data[0]: break
    threading.Event().wait(0.2)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
out['lists_status'] = data[0].decode() if typ == 'OK' else typ
typ, boxes = m.list()
out['imap_list'] = [b.decode() for b in boxes]
m.logout()
print(json.dumps(out))
`;

test('postern start serves ManageSieve; a script uploaded there files mail at delivery; Pigeonhole layout, not IMAP folders', async () => {
  const port = sys.ports['sieve' as PortName];
  assert.ok(port, 'the default configuration has a ManageSieve port');
  const r = await new Promise<{ code: number; out: string; err: string }>((resolve, reject) => {
    const p = spawn('python3', ['-c', PY, String(port), 'postmaster@example.test', sys.password, String(sys.ports.imap), String(sys.ports.smtp)]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
  assert.equal(r.code, 0, r.err + sys.log.slice(-3000));
  const o = JSON.parse(r.out) as Record<string, string> & { wrong_secs: number; imap_list: string[] };
  assert.match(o.greeting, /^"IMPLEMENTATION" "Postern"\r\n"SIEVE" "fileinto .*"\r\n"NOTIFY" "mailto"\r\n"SASL" "PLAIN LOGIN"\r\n"STARTTLS"\r\n"VERSION" "1\.0"\r\nOK ".*"\r\n$/);
  assert.equal(o.starttls, 'OK "Begin TLS negotiation now."\r\n');
  assert.match(o.tls, /"SASL" "PLAIN LOGIN"\r\n"VERSION" "1\.0"\r\nOK "TLS negotiation successful\."\r\n$/);
  assert.equal(o.wrong, 'NO "Authentication failed."\r\n');
  // The master's auth penalty (auth_failure_delay = 2 s by default) holds a wrong password.
  assert.ok(o.wrong_secs >= 1.5, `wrong password answered after ${o.wrong_secs} s`);
  assert.equal(o.login, 'OK "Logged in."\r\n');
  assert.equal(o.put, 'OK "PUTSCRIPT completed."\r\n');
  assert.equal(o.active, 'OK "Setactive completed."\r\n');
  assert.equal(o.list, '"lists" ACTIVE\r\nOK "Listscripts completed."\r\n');
  assert.equal(o.logout, 'OK "Logout completed."\r\n');
  const home = sys.maildir('postmaster@example.test');
  assert.match(readFileSync(join(home, 'sieve', 'lists.sieve'), 'utf8'), /fileinto :create "Lists"/);
  assert.equal(readlinkSync(join(home, '.dovecot.sieve')), 'sieve/lists.sieve');
  // The script uploaded over ManageSieve filed the message at delivery.
  assert.match(o.lists_status, /"?Lists"? \(MESSAGES 1\)/, sys.log.slice(-3000));
  assert.ok(!o.imap_list.some((l) => /sieve/i.test(l)), `IMAP LIST shows no script files: ${o.imap_list.join(' | ')}`);
  assert.match(sys.log, /managesieve-login: Login: user=<postmaster@example\.test>, method=PLAIN/);
});
