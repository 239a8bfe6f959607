/**
 * authres-kit - helpers for the inbound verification tests (docs/authres.md): a Postern system
 * whose mail from 127.0.0.1 counts as "from outside" and whose DNS is a loopback server, a real
 * SMTP client (Python's smtplib) that reports the final reply, signing with Debian's python3-dkim
 * (dkimsign, arcsign, dknewkey), and waiting for the delivered Maildir file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PosternSystem } from './postern-system.ts';

export const AUTHSERV_ID = 'mx.postern.test';
export const RCPT = 'postmaster@example.test';

/** Append main.cf lines and reload; resolves when the master has finished the reload. */
export async function reconfigure(sys: PosternSystem, lines: string): Promise<void> {
  // The master rewrites its status file (queue_directory/pid/services) as a reload's last step.
  const status = join(sys.configDir, 'data', 'queue', 'pid', 'services');
  const before = existsSync(status) ? statSync(status).mtimeMs : 0;
  appendFileSync(join(sys.configDir, 'main.cf'), lines);
  const mark = sys.log.length;
  const r = (await sys.cli('reload'));
  if (r.status !== 0) throw new Error(`postern reload: ${r.stderr}`);
  const end = Date.now() + 30_000;
  while (Date.now() < end && !/reload -- version/.test(sys.log.slice(mark))) await new Promise((res) => setTimeout(res, 25));
  while (Date.now() < end && (existsSync(status) ? statSync(status).mtimeMs : 0) === before) await new Promise((res) => setTimeout(res, 25));
  await new Promise((res) => setTimeout(res, 500));
}

const SEND_PY = `
import smtplib, sys, json
host, port, helo, mfrom, rcpt, src = sys.argv[1:7]
msg = sys.stdin.buffer.read()
s = smtplib.SMTP(timeout=120, source_address=(src, 0))
s.connect(host, int(port))
s.ehlo(helo)
code, text = s.mail(mfrom)
if code == 250:
    code, text = s.rcpt(rcpt)
if code == 250:
    try:
        code, text = s.data(msg)
    except smtplib.SMTPDataError as e:
        code, text = e.smtp_code, e.smtp_error
s.quit()
print(json.dumps({"code": code, "text": text.decode("utf-8", "replace")}))
`;

/**
 * Send one message with smtplib; returns the reply to the end of DATA (or to MAIL/RCPT).
 * Asynchronous: the loopback DNS server runs in the test's own process and must keep answering.
 */
export async function smtpSend(port: number, o: { helo: string; from: string; rcpt?: string; src?: string; msg: string | Buffer }): Promise<{ code: number; text: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn('python3', ['-c', SEND_PY, '127.0.0.1', String(port), o.helo, o.from, o.rcpt ?? RCPT, o.src ?? '127.0.0.1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  child.stdin.on('error', () => {});
  child.stdin.end(o.msg);
  const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  const code = await new Promise<number | null>((r) => child.once('close', r));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`smtplib: ${err}`);
  return { ...JSON.parse(out) as { code: number; text: string }, ms: Date.now() - t0 };
}

/** A message with LF line ends made CRLF (what smtplib sends as is). */
export function message(headers: Record<string, string> | string[], body = 'Hello.\n'): string {
  const lines = Array.isArray(headers) ? headers : Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${lines.join('\n')}\n\n${body}`.replace(/\r?\n/g, '\r\n');
}

export interface DkimKey { keyFile: string; dns: string }

/** dknewkey (python3-dkim): a key and its TXT record. */
export function newKey(dir: string, name: string, type: 'rsa' | 'ed25519'): DkimKey {
  const r = spawnSync('/usr/bin/dknewkey', ['--ktype', type, join(dir, name)], { encoding: 'utf8', cwd: dir });
  if (r.status !== 0) throw new Error(`dknewkey: ${r.stderr}`);
  return { keyFile: join(dir, `${name}.key`), dns: readFileSync(join(dir, `${name}.dns`), 'utf8').trim() };
}

/** A 512-bit RSA key (openssl genrsa), for the "keys under 1024 bits are refused" case. */
export function smallKey(dir: string): DkimKey {
  const keyFile = join(dir, 'small.pem');
  const g = spawnSync('openssl', ['genrsa', '-out', keyFile, '512'], { encoding: 'utf8' });
  if (g.status !== 0) throw new Error(`openssl genrsa: ${g.stderr}`);
  const pub = spawnSync('openssl', ['rsa', '-in', keyFile, '-pubout', '-outform', 'DER'], { maxBuffer: 1 << 20 });
  if (pub.status !== 0) throw new Error(`openssl rsa: ${pub.stderr}`);
  return { keyFile, dns: `v=DKIM1; k=rsa; p=${Buffer.from(pub.stdout).toString('base64')}` };
}

/** dkimsign (python3-dkim): the message with its DKIM-Signature on top. */
export function dkimSign(msg: string, selector: string, domain: string, key: DkimKey, alg: 'rsa-sha256' | 'ed25519-sha256' = 'rsa-sha256'): string {
  const r = spawnSync('/usr/bin/dkimsign', ['--signalg', alg, '--bcanon', 'relaxed', selector, domain, key.keyFile], { input: msg, encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.startsWith('DKIM-Signature:')) throw new Error(`dkimsign: ${r.stderr}${r.stdout.slice(0, 200)}`);
  return r.stdout;
}

/** python3-dkim's dkim.sign with length=True: the signature carries l= (the body length signed). */
export function dkimSignWithLength(msg: string, selector: string, domain: string, key: DkimKey): string {
  const py = 'import dkim,sys\nm=sys.stdin.buffer.read()\nk=open(sys.argv[3],"rb").read()\n'
    + 'sys.stdout.buffer.write(dkim.sign(m,sys.argv[1].encode(),sys.argv[2].encode(),k,length=True,canonicalize=(b"relaxed",b"relaxed"))+m)';
  const r = spawnSync('/usr/bin/python3', ['-c', py, selector, domain, key.keyFile], { input: msg, encoding: 'utf8' });
  if (r.status !== 0 || !/^DKIM-Signature:[^]*l=\d+/.test(r.stdout)) throw new Error(`dkim.sign(length=True): ${r.stderr}${r.stdout.slice(0, 200)}`);
  return r.stdout;
}

/** arcsign (python3-dkim): an ARC set on top (the message must carry an Authentication-Results for srvId). */
export function arcSign(msg: string, selector: string, domain: string, key: DkimKey, srvId: string): string {
  const r = spawnSync('/usr/bin/arcsign', [selector, domain, key.keyFile, srvId], { input: msg, encoding: 'utf8' });
  if (r.status !== 0 || !/^ARC-Seal:/m.test(r.stdout)) throw new Error(`arcsign: ${r.stderr}${r.stdout.slice(0, 300)}`);
  return r.stdout.replace(/\r?\n/g, '\r\n');
}

/** The delivered file whose content contains `marker`, in INBOX or Junk; waits up to `ms`. */
export async function delivered(maildir: string, marker: string, ms = 30_000): Promise<{ folder: 'INBOX' | 'Junk'; text: string }> {
  const end = Date.now() + ms;
  for (;;) {
    for (const [folder, dir] of [['INBOX', maildir], ['Junk', join(maildir, '.Junk')]] as const) {
      for (const sub of ['new', 'cur']) {
        const d = join(dir, sub);
        if (!existsSync(d)) continue;
        for (const f of readdirSync(d)) {
          let text: string;
          try { text = readFileSync(join(d, f), 'latin1'); } catch { continue; }
          if (text.includes(marker)) return { folder, text };
        }
      }
    }
    if (Date.now() > end) throw new Error(`no delivered message with ${marker} in ${maildir}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Authentication-Results headers of a delivered message that claim AUTHSERV_ID, unfolded. */
export function ourAuthres(text: string): string[] {
  const head = text.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  return head.split(/\r?\n/).filter((l) => new RegExp(`^Authentication-Results:\\s*${AUTHSERV_ID.replace(/\./g, '\\.')};`, 'i').test(l));
}

export function tempDir(prefix: string): string { return mkdtempSync(join(tmpdir(), prefix)); }
export function writeText(path: string, text: string): void { writeFileSync(path, text); }
