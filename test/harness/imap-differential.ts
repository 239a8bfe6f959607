/**
 * imap-differential - runs the same IMAP steps against real Dovecot 2.3 (a private instance from
 * real-dovecot.ts) and against Postern's imapd (imapd-testkit.ts), each case as a fresh user on
 * both sides, and returns each step's answer normalised, so a test can compare them one by one.
 *
 *   const d = await Differential.start(['c1@x.test', 'c2@x.test']);
 *   const { dovecot, postern } = await d.run('c1@x.test', ['SELECT INBOX', [2, 'APPEND INBOX {3+}\r\nabc'], 'NOOP']);
 *   await d.stop();
 *
 * A step is a tagged command without its tag (session 1), or [session, command] to run it on a
 * second (third ...) logged-in session of the same user. Synchronising literals `{N}` at the end
 * of a line wait for the server's `+` before the rest is sent (so `~{N}` literal8 works without
 * LITERAL+); `{N+}` is sent at once. The answer of a step is everything its session received
 * from the command up to and including its tagged reply; when the server closes the connection
 * the answer ends with `<closed>`. Normalised: Dovecot's timing texts, UIDVALIDITY, APPENDUID/
 * COPYUID validity, MAILBOXID (RFC 8474, not in Dovecot 2.3), MODSEQ numbers (time-derived on both sides, Postern's start lower), CAPABILITY
 * lists and the greeting text; a BYE right before the close (Dovecot's may be lost); LIST and LSUB lines are sorted (Dovecot answers in directory order).
 */
import { connect, type Socket } from 'node:net';
import { RealDovecot } from './real-dovecot.ts';
import { NAMESPACE_CONF, startFixture, type Fixture } from './imapd-testkit.ts';

/** A command: text is sent as UTF-8, a Buffer as is (8-bit literals, NUL bytes). */
export type Command = string | Buffer;
export type Step = Command | [number, Command];

export { NAMESPACE_CONF };

export class Session {
  private readonly sock: Socket;
  private buf = '';
  closed = false;
  constructor(port: number) {
    this.sock = connect(port, '127.0.0.1');
    this.sock.on('data', (d: Buffer) => { if (this.buf.length < 8 << 20) this.buf += d.toString('latin1'); });
    this.sock.on('close', () => { this.closed = true; });
    this.sock.on('error', () => { this.closed = true; });
  }
  /** Waits for `re` (or the close); returns and consumes what was received up to its end. */
  async wait(re: RegExp, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const out = this.buf.slice(0, m.index + m[0].length);
        this.buf = this.buf.slice(m.index + m[0].length);
        return out;
      }
      if (this.closed) { const out = this.buf + '<closed>\n'; this.buf = ''; return out; }
      if (Date.now() > end) { const out = this.buf + '<timeout>\n'; this.buf = ''; return out; }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  /** Sends `tag command`, honouring synchronising literals; returns the whole answer. */
  async command(tag: string, command: Command): Promise<string> {
    if (this.closed) return '<closed>\n';
    const bytes = typeof command === 'string' ? Buffer.from(command, 'utf8') : command;
    const parts = bytes.toString('latin1').split(/(?<=~?\{\d+\}\r\n)/);
    let out = '';
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      this.sock.write(Buffer.from((i === 0 ? `${tag} ` : '') + parts[i] + (last ? '\r\n' : ''), 'latin1'));
      if (!last) {
        const got = await this.wait(new RegExp(`(^|\\n)(\\+ [^\\n]*|${tag} (OK|NO|BAD)[^\\n]*)\\n`));
        out += got.replace(/(^|\n)\+ [^\n]*\n$/, '$1');
        if (!/(^|\n)\+ [^\n]*\n$/.test(got)) return out;
      }
    }
    return out + await this.wait(new RegExp(`(^|\\n)${tag} (OK|NO|BAD)[^\\n]*\\n`));
  }
  /** Raw bytes (another protocol on the same kind of connection: an LMTP delivery). */
  write(data: string): void { this.sock.write(data); }
  close(): void { this.sock.destroy(); }
}

/** LIST/LSUB lines (each with the STATUS line LIST-STATUS puts after it) sorted: Dovecot lists in directory order. */
function sortListLines(s: string): string {
  const lines = s.split('\n');
  const units: string[] = [];
  const rest: string[] = [];
  for (const l of lines) {
    if (/^\* (LIST|LSUB) /.test(l)) units.push(l);
    else if (/^\* STATUS /.test(l) && units.length > 0 && rest.length === 0) units[units.length - 1] += '\n' + l;
    else rest.push(l);
  }
  return units.length > 1 ? [...units.sort(), ...rest].join('\n') : s;
}

export function normalise(s: string): string {
  return sortListLines(s)
    // Dovecot's BYE before it closes may be lost in the close (it shuts the socket at once)
    .replace(/^\* BYE [^\n]*\n<closed>\n$/m, '<closed>\n')
    .replace(/ \(\d+\.\d{3} \+ \d+\.\d{3}(?: \+ \d+\.\d{3})? secs\)\./g, '')
    .replace(/UIDVALIDITY \d+/g, 'UIDVALIDITY V').replace(/(APPENDUID|COPYUID) \d+/g, '$1 V')
    // RFC 8474 OBJECTID, which Dovecot 2.3 lacks: SELECT's and CREATE's MAILBOXID left out
    .replace(/^\* OK \[MAILBOXID \([\w-]+\)\] Ok\r?\n/gm, '').replace(/\[MAILBOXID \([\w-]+\)\] /g, '')
    .replace(/(HIGHESTMODSEQ|MODSEQ) \(?\d+\)?/g, '$1 M')
    .replace(/\[CAPABILITY [^\]]*\]/g, '[CAPABILITY ...]').replace(/^\* CAPABILITY .*$/gm, '* CAPABILITY ...');
}

export interface DifferentialAnswer { dovecot: string[]; postern: string[] }

export class Differential {
  readonly dc: RealDovecot;
  readonly fx: Fixture;
  private constructor(dc: RealDovecot, fx: Fixture) { this.dc = dc; this.fx = fx; }

  /** Users by name, or with passwd-file extra fields (`{ user, extra: 'userdb_acl_groups=staff' }`). */
  /** `lmtp`: Dovecot's LMTP server too (dc.ports.lmtp), for deliveries. */
  static async start(list: (string | { user: string; extra: string })[], o: { dovecotConf?: string; posternConf?: string; lmtp?: boolean } = {}): Promise<Differential> {
    const users = list.map((u) => (typeof u === 'string' ? { user: u, extra: '' } : u));
    const dc = await RealDovecot.start({ protocols: o.lmtp ? ['imap', 'lmtp'] : ['imap'], users: users.map(({ user, extra }) => ({ user, pass: 'pw', extra })), extraConf: NAMESPACE_CONF + (o.dovecotConf ?? '') });
    try {
      const fx = await startFixture({ users: users.map(({ user, extra }) => [user, 'pw', extra]), ...(o.posternConf !== undefined ? { conf: o.posternConf } : {}) });
      return new Differential(dc, fx);
    } catch (e) {
      await dc.stop();
      throw e;
    }
  }

  /**
   * Runs the steps on both servers (Dovecot first), each with its own sessions. `modseqMap`: the
   * index of a `FETCH 1:* (MODSEQ)` step; every mod-sequence number in the answers is then written
   * as the message that has it (`MODSEQ <msg 3>`), so values can be compared across servers whose
   * numbers differ.
   */
  async run(user: string, steps: Step[], o: { modseqMap?: number } = {}): Promise<DifferentialAnswer> {
    const one = async (port: number): Promise<string[]> => {
      const raw = await runSteps(port, user, steps);
      return raw.map((a) => normalise(o.modseqMap !== undefined ? modseqByMessage(a, raw[o.modseqMap]!) : a));
    };
    return { dovecot: await one(this.dc.ports.imap!), postern: await one(this.fx.port) };
  }

  /** The user's Maildir root on each side. */
  maildirs(user: string): { dovecot: string; postern: string } {
    return { dovecot: this.dc.maildir(user), postern: this.fx.maildir(user) };
  }

  async stop(): Promise<void> {
    await this.fx.stop();
    await this.dc.stop();
  }
}

/** Sessions on `port` by number, each opened and logged in as `user` when first asked for. */
export function loggedInSessions(port: number, user: string): { session(n: number): Promise<Session>; close(): void } {
  const sessions = new Map<number, Session>();
  return {
    async session(n: number): Promise<Session> {
      let s = sessions.get(n);
      if (!s) {
        s = new Session(port);
        sessions.set(n, s);
        await s.wait(/^\* OK[^\n]*\n/);
        await s.command('L', `LOGIN ${user} pw`);
      }
      return s;
    },
    close(): void { for (const s of sessions.values()) s.close(); },
  };
}

/** The steps on one server (raw answers, not normalised). */
export async function runSteps(port: number, user: string, steps: Step[]): Promise<string[]> {
  const pool = loggedInSessions(port, user);
  const out: string[] = [];
  try {
    for (const [i, st] of steps.entries()) {
      const [n, c] = Array.isArray(st) ? st : [1, st];
      out.push(await (await pool.session(n)).command(`t${i}`, c));
    }
  } finally {
    pool.close();
  }
  return out;
}

/** Mod-sequence numbers replaced by the message (sequence number) that has it in `fetch`. */
function modseqByMessage(answer: string, fetch: string): string {
  const owner = new Map<string, string>();
  for (const m of fetch.matchAll(/^\* (\d+) FETCH \(MODSEQ \((\d+)\)\)/gm)) owner.set(m[2]!, m[1]!);
  return answer.replace(/(?<!HIGHEST)(MODSEQ \(?)(\d+)/g, (all, head: string, n: string) => (owner.has(n) ? `${head}<msg ${owner.get(n)}>` : all));
}

/** The differences of one case, readable: step, command, Dovecot's and Postern's answers. */
export function differences(steps: Step[], a: DifferentialAnswer, known: (i: number) => boolean = () => false): string[] {
  const diffs: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    if (known(i)) continue;
    if (a.dovecot[i] !== a.postern[i]) {
      const st = steps[i]!;
      const c = Array.isArray(st) ? `[session ${st[0]}] ${st[1].toString()}` : st.toString();
      diffs.push(`t${i} ${c.slice(0, 120)}\n--- Dovecot\n${a.dovecot[i]}--- Postern\n${a.postern[i]}`);
    }
  }
  return diffs;
}
