/**
 * test-ca - a private certification authority for TLS tests, made with the `openssl` command
 * (an implementation nobody here wrote): a CA certificate and leaf certificates it signs, with
 * subjectAltName DNS names, plus the numbers tests compare against (SHA-256 fingerprints of the
 * certificate and of its public key, the TLSA "3 1 1" digest).
 *
 *   const ca = TestCa.create(dir, 'Postern Test CA');
 *   const leaf = ca.issue('mx', ['mx.example.test', 'localhost']);
 *   // leaf.certFile, leaf.keyFile, leaf.fingerprint ("AB:CD:..."), leaf.spkiSha256 (hex)
 *
 * Everything lives under `dir`; the caller removes it.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestLeaf {
  certFile: string;
  keyFile: string;
  certPem: string;
  /** SHA-256 of the DER certificate, Postfix's "AB:CD:..." form. */
  fingerprint: string;
  /** SHA-256 of the DER SubjectPublicKeyInfo, hex (TLSA 3 1 1 / 2 1 1 data). */
  spkiSha256: string;
  /** SHA-256 of the DER certificate, hex (TLSA 3 0 1 data). */
  certSha256: string;
}

function digests(pem: string): { fingerprint: string; spkiSha256: string; certSha256: string } {
  const x = new X509Certificate(pem);
  const certSha256 = createHash('sha256').update(x.raw).digest('hex');
  const spki = x.publicKey.export({ type: 'spki', format: 'der' });
  return { fingerprint: certSha256.toUpperCase().match(/../g)!.join(':'), spkiSha256: createHash('sha256').update(spki).digest('hex'), certSha256 };
}

export class TestCa {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly name: string;
  /** The CA certificate's own digests (DANE-TA "2 0 1" uses certSha256). */
  readonly digests: { fingerprint: string; spkiSha256: string; certSha256: string };
  private serial = 1;

  private constructor(dir: string, name: string) {
    this.dir = dir; this.name = name;
    this.certFile = join(dir, `${name.replace(/\W+/g, '_')}-ca.pem`);
    this.keyFile = join(dir, `${name.replace(/\W+/g, '_')}-ca.key`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', this.keyFile, '-out', this.certFile, '-days', '3',
      '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
    this.digests = digests(readFileSync(this.certFile, 'utf8'));
  }

  static create(dir: string, name = 'Postern Test CA'): TestCa { return new TestCa(dir, name); }

  /** A leaf certificate for `names` (the first is the CN), signed by this CA. `chain` appends the CA certificate to the cert file. */
  issue(base: string, names: string[], opts: { chain?: boolean; eku?: string } = {}): TestLeaf {
    const key = join(this.dir, `${base}.key`);
    const csr = join(this.dir, `${base}.csr`);
    const cert = join(this.dir, `${base}.pem`);
    const ext = join(this.dir, `${base}.ext`);
    execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`], { stdio: 'pipe' });
    writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=${opts.eku ?? 'serverAuth'}\n`);
    execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', this.certFile, '-CAkey', this.keyFile, '-set_serial', String(++this.serial + Date.now() % 100000),
      '-out', cert, '-days', '2', '-extfile', ext], { stdio: 'pipe' });
    const leafPem = readFileSync(cert, 'utf8');
    if (opts.chain) writeFileSync(cert, leafPem + readFileSync(this.certFile, 'utf8'));
    return { certFile: cert, keyFile: key, certPem: leafPem, ...digests(leafPem) };
  }
}
