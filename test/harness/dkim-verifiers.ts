/**
 * dkim-verifiers - independent DKIM verifiers from Debian, asking the test's loopback DNS server
 * (dns-server.ts) for the keys, never the machine's resolver:
 *
 *   python3-dkim (dkimpy, the library behind `dkimverify`): dkim.DKIM(msg).verify(idx=i) for every
 *     DKIM-Signature, its dnsfunc a dnspython resolver pointed at 127.0.0.1:PORT;
 *   OpenDKIM (`opendkim -t FILE`, libopendkim, its unbound resolver forwarding to 127.0.0.1@PORT
 *     through ResolverConfiguration): opendkim -t reports one signature, so each signature is
 *     checked on a copy of the message that keeps only that one (h= never covers other
 *     DKIM-Signature fields, so removing them changes nothing for it).
 *
 *   const r = await pythonDkimVerify(message, dns.port);   // [{ d, s, a, ok }]
 *   const o = await opendkimVerify(message, dns.port);      // [{ d, s, ok, text }]
 *   const a = await pythonArcVerify(message, dns.port);     // { cv: 'pass', sets: [...] } (RFC 8617 chain)
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** Debian's python3 (python3-dkim, python3-dnspython), not one from a version manager on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface DkimVerdict { d: string; s: string; a?: string; ok: boolean; text?: string }

/** Python: the message on stdin (CRLF), `dnsfunc` asking the loopback DNS server on port argv[1]. */
const PY_PRELUDE = `
import sys, json, re, dkim, dns.resolver
port = int(sys.argv[1])
msg = sys.stdin.buffer.read().replace(b'\\r\\n', b'\\n').replace(b'\\n', b'\\r\\n')
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = port
def dnsfunc(name, timeout=5):
    try:
        ans = r.resolve(name.decode().rstrip('.'), 'TXT', lifetime=timeout)
    except Exception:
        return None
    for rd in ans:
        return b''.join(rd.strings)
    return None
`;

const PY = PY_PRELUDE + `d = dkim.DKIM(msg)
head = msg.split(b'\\r\\n\\r\\n', 1)[0]
sigs = [m for m in re.findall(rb'(?im)^dkim-signature:([^\\r\\n]*(?:\\r\\n[ \\t][^\\r\\n]*)*)', head)]
out = []
for i, s in enumerate(sigs):
    tags = dict((k.strip().decode(), v.strip().decode()) for k, v in (t.split(b'=', 1) for t in re.sub(rb'\\s+', b'', s).split(b';') if b'=' in t))
    try:
        ok, text = bool(d.verify(idx=i, dnsfunc=dnsfunc)), ''
    except Exception as e:
        ok, text = False, str(e)
    out.append({'d': tags.get('d', ''), 's': tags.get('s', ''), 'a': tags.get('a', ''), 'ok': ok, 'text': text})
print(json.dumps(out))
`;

/** Run a Python script with the DNS port as argv[1] and `message` on stdin; its stdout. */
async function runPython(script: string, dnsPort: number, message: Buffer, what: string): Promise<string> {
  const child = spawn(SYSTEM_PYTHON, ['-c', script, String(dnsPort)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  child.stdin.end(message);
  const code = await new Promise<number | null>((res) => child.on('close', res));
  if (code !== 0) throw new Error(`${what} failed (${code}): ${err}`);
  return out;
}

/** python3-dkim's verdict on every DKIM-Signature of `message`, in header order. */
export async function pythonDkimVerify(message: Buffer, dnsPort: number): Promise<DkimVerdict[]> {
  return JSON.parse(await runPython(PY, dnsPort, message, 'python3-dkim')) as DkimVerdict[];
}

const PY_ARC = PY_PRELUDE + `cv, results, comment = dkim.ARC(msg).verify(dnsfunc=dnsfunc)
print(json.dumps({'cv': cv.decode() if isinstance(cv, bytes) else str(cv), 'comment': str(comment),
  'sets': [{'i': x['instance'], 'd': x['as-domain'].decode(), 's': x['as-selector'].decode(), 'amsValid': x['ams-valid'], 'asValid': x['as-valid'], 'cv': x['cv'].decode()} for x in results]}))
`;

export interface ArcVerdict { cv: string; comment: string; sets: { i: number; d: string; s: string; amsValid: boolean; asValid: boolean; cv: string }[] }

/** python3-dkim's ARC chain validation (dkim.ARC(msg).verify): cv 'pass' for a valid chain. */
export async function pythonArcVerify(message: Buffer, dnsPort: number): Promise<ArcVerdict> {
  return JSON.parse(await runPython(PY_ARC, dnsPort, message, 'python3-dkim ARC')) as ArcVerdict;
}

/** The header fields of a message (LF or CRLF), each with its continuation lines, and the rest. */
function splitFields(message: Buffer): { fields: string[]; rest: string } {
  const text = message.toString('latin1').replace(/\r\n/g, '\n');
  const end = text.indexOf('\n\n');
  const head = end < 0 ? text : text.slice(0, end + 1);
  const fields: string[] = [];
  for (const line of head.split(/(?<=\n)/)) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += line; else if (line) fields.push(line);
  }
  return { fields, rest: end < 0 ? '' : text.slice(end + 1) };
}

/** OpenDKIM's verdict on each DKIM-Signature of `message`. */
export async function opendkimVerify(message: Buffer, dnsPort: number): Promise<DkimVerdict[]> {
  const dir = mkdtempSync(join(tmpdir(), 'opendkim-t-'));
  try {
    writeFileSync(join(dir, 'unbound.conf'), `server:\n  do-ip6: no\n  module-config: "iterator"\n  qname-minimisation: no\nlocal-zone: \"test.\" nodefault\nforward-zone:\n  name: "."\n  forward-addr: 127.0.0.1@${dnsPort}\n`);
    writeFileSync(join(dir, 'opendkim.conf'), `Mode v\nSyslog no\nResolverConfiguration ${join(dir, 'unbound.conf')}\n`);
    const { fields, rest } = splitFields(message);
    const sigs = fields.filter((f) => /^dkim-signature:/i.test(f));
    const out: DkimVerdict[] = [];
    for (const [i, sig] of sigs.entries()) {
      const tag = (t: string) => new RegExp(`(?:^|;)\\s*${t}=([^;]*)`).exec(sig.slice(sig.indexOf(':') + 1).replace(/\s+/g, ''))?.[1] ?? '';
      const file = join(dir, `m${i}.eml`);
      writeFileSync(file, Buffer.from(fields.filter((f) => f === sig || !/^dkim-signature:/i.test(f)).join('') + rest, 'latin1'));
      const { stdout, stderr } = await run('opendkim', ['-x', join(dir, 'opendkim.conf'), '-t', file], { timeout: 30_000 });
      const text = (stdout + stderr).trim();
      out.push({ d: tag('d'), s: tag('s'), ok: /verification \(.*\) succeeded$/m.test(text), text });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
