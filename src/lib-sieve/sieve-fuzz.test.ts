/**
 * sieve-fuzz: seeded mutations of real scripts (tokens deleted, repeated, swapped, replaced by
 * other Sieve tokens). Whatever the text, compileSieve() answers ok or errors with a line and
 * never throws, and a script that compiles runs over a MIME message without an exception
 * escaping the interpreter (runtime errors end as "implicit keep"). SEED=n reproduces a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileSieve, sieveExtensions } from './sieve-compile.ts';
import { planSieveDelivery } from './sieve-run.ts';
import { sieveSettings } from './sieve-settings.ts';

const SEEDS = [
  'require ["fileinto","imap4flags","variables","regex","relational","comparator-i;ascii-numeric"];\nif header :regex "subject" "^\\\\[([a-z]+)\\\\]" { fileinto :flags "\\\\Seen" "${1}"; stop; }\nif header :value "ge" :comparator "i;ascii-numeric" "x-score" "5" { addflag "Spam"; }\n',
  'require ["vacation","date","relational","envelope","subaddress"];\nif allof (currentdate :value "ge" "date" "2020-01-01", envelope :detail "to" "x") { vacation :days 1 :subject "Away" :addresses ["a@b.c"] text:\nGone.\n.\n; }\n',
  'require ["body","mime","foreverypart","extracttext","variables","editheader","index"];\nforeverypart :name "p" { if header :mime :type "content-type" "text" { extracttext :first 10 "t"; addheader :last "X-T" "${t}"; break :name "p"; } }\nif body :content "text/html" :contains "x" { deleteheader :index 1 "received"; }\n',
  'require ["include","duplicate","enotify","environment","mailbox","copy","reject","encoded-character"];\ninclude :optional :once "x";\nif duplicate :seconds 60 :header "message-id" { discard; }\nif environment :is "location" "MDA" { notify :importance "1" "mailto:a@b.test"; }\nif not mailboxexists "Q" { fileinto :copy :create "Q"; }\nif address :all :is ["from","to"] "${hex:61}@b" { reject "no"; }\n',
  'if anyof (exists "x", size :over 1K, not true, header :matches "s" "*?\\\\*") { redirect "a@b.test"; } elsif false { keep; } else { discard; }\n',
];
const VOCAB = ['if', 'elsif', 'else', 'not', 'anyof', 'allof', '(', ')', '{', '}', '[', ']', ',', ';', ':is', ':contains', ':matches', ':regex', ':value', ':count', ':comparator', ':index', ':last', ':mime', ':anychild', ':type', ':param', ':days', ':seconds', ':flags', ':copy', ':create', ':name', ':first', '"x"', '"${1}"', '"${hex:zz}"', '"(a+)+$"', '"*"', '1', '0', '99999999999999', '1K', 'text:\nx\n.\n', 'header', 'address', 'envelope', 'body', 'string', 'date', 'currentdate', 'fileinto', 'redirect', 'vacation', 'set', 'foreverypart', 'break', 'extracttext', 'include', 'return', 'stop', 'keep', 'discard', 'addflag', 'hasflag', 'notify', 'duplicate', 'require', '"variables"', '#c\n', '/*c*/'];

class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0 || 1; }
  next(): number { this.s ^= this.s << 13; this.s ^= this.s >>> 17; this.s ^= this.s << 5; return (this.s >>> 0) / 0x100000000; }
  int(n: number): number { return Math.floor(this.next() * n); }
}

function tokens(s: string): string[] {
  return s.match(/text:\n[\s\S]*?\n\.\n|"(?:[^"\\]|\\.)*"|\/\*[\s\S]*?\*\/|#[^\n]*\n|:?[A-Za-z_][A-Za-z0-9_;-]*|\d+[KMG]?|\S|\s+/g) ?? [];
}

function mutate(r: Rng, s: string): string {
  const t = tokens(s);
  for (let n = 1 + r.int(4); n > 0 && t.length; n--) {
    const i = r.int(t.length);
    switch (r.int(4)) {
      case 0: t.splice(i, 1); break;
      case 1: t.splice(i, 0, t[i]!); break;
      case 2: { const j = r.int(t.length); [t[i], t[j]] = [t[j]!, t[i]!]; break; }
      default: t.splice(i, 1, ' ' + VOCAB[r.int(VOCAB.length)]! + ' ');
    }
  }
  return t.join('');
}

const MSG = Buffer.from('From: A <a@b.test>\nTo: c@d.test\nSubject: [work] x\nMessage-ID: <f@x>\nX-Score: 7\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="B"\n\n--B\nContent-Type: text/plain\n\nhello x\n--B\nContent-Type: text/html\n\n<p>x</p>\n--B--\n');

test('mutated scripts: compile never throws; what compiles runs without escaping exceptions', async () => {
  const seed = Number(process.env.SEED ?? 20261207);
  const r = new Rng(seed);
  const ext = sieveExtensions('+editheader +vacation-seconds +spamtest +virustest +special-use');
  const settings = { ...sieveSettings({ get: (n) => (n === 'mail_plugins' ? 'sieve' : undefined) }, 'lmtp'), extensions: ext, hostname: 'mx.test' };
  const home = mkdtempSync(join(tmpdir(), 'sieve-fuzz-'));
  let compiled = 0;
  try {
    for (let i = 0; i < 1500; i++) {
      const text = mutate(r, SEEDS[r.int(SEEDS.length)]!);
      let res;
      try {
        res = compileSieve(text, { extensions: ext });
      } catch (e) {
        assert.fail(`compileSieve threw on iteration ${i} (SEED=${seed}): ${(e as Error).stack}\n--- script ---\n${text}`);
      }
      if (!res.ok) {
        for (const e of res.errors) assert.ok(e.line >= 0 && typeof e.message === 'string' && e.message !== '', text);
        continue;
      }
      compiled++;
      try {
        await planSieveDelivery({
          settings, user: 'c@d.test', home, envelope: { from: 'a@b.test', to: 'c@d.test' }, content: MSG,
          mailboxExists: async () => false, scripts: [{ phase: 'personal', path: 'fuzz', script: res.script, includes: new Map() }],
        });
      } catch (e) {
        assert.fail(`the interpreter threw on iteration ${i} (SEED=${seed}): ${(e as Error).stack}\n--- script ---\n${text}`);
      }
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  assert.ok(compiled > 50, `only ${compiled} mutants compiled`);
});
