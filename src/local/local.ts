/**
 * local - local(8), delivery for the local address class (Postfix src/local/).
 *
 * SUMMARY
 *   createLocalAgent(config, deps) → DeliveryAgent for the master.cf `local` transport.
 *
 * DESCRIPTION (Postfix local/recipient.c order, per recipient)
 *   0. A message that already has `Delivered-To: <recipient>` bounces 5.4.6 "mail forwarding
 *      loop for X".
 *   1. alias_maps, looked up with the local part (then without its extension,
 *      recipient_delimiter). The value (local-token.ts) expands to addresses, /files, |commands
 *      and :include: files. An alias `owner-NAME` makes `owner-NAME@$myorigin` (or, with
 *      expand_owner_alias = yes, its expansion) the envelope sender of NAME's expansion.
 *   2. the user's ~/.forward (forward_path, local-dotforward.ts), for UNIX accounts.
 *   3. the mailbox (local-mailbox.ts): mailbox_transport, mailbox_command, home_mailbox,
 *      mail_spool_directory.
 *   Unknown names: fallback_transport (a redirect), else luser_relay, else bounce 5.1.1
 *   `unknown user: "name"`.
 *
 *   Addresses in an expansion whose domain is local (mydestination, or no domain) are
 *   delivered again in this process, recursively (Postfix deliver_recursive); other addresses
 *   are re-submitted as ONE new queue file per envelope sender through cleanup, with
 *   `Delivered-To: <recipient>` prepended; the recipient is then "forwarded as QID".
 *   Loops: an address that reappears inside its own expansion bounces 5.4.6 "mail forwarding
 *   loop"; a name that expands to itself (`bob: bob, bob@elsewhere`, or `bob` in bob's
 *   .forward) goes to its mailbox; an address reached twice by different paths is delivered
 *   once; more than 100 levels bounce.
 *   One recipient's result is the worst of its expansion: deferred > bounced > sent.
 *
 * SECURITY
 *   Files and commands are never delivered as root: alias targets run with the alias table
 *   owner's rights (if not root) else default_privs (nobody); .forward targets with the user's;
 *   :include: targets with the include file owner's (if not root) else inherited rights.
 *   allow_mail_to_commands / allow_mail_to_files (alias, forward, include) are enforced
 *   (bounce 5.7.1 "mail to command/file is restricted"). An :include: file is read by a child
 *   running with those rights, so a user cannot include a file they cannot read.
 *
 * PARAMETERS
 *   alias_maps, expand_owner_alias, owner_request_special, allow_mail_to_commands,
 *   allow_mail_to_files, default_privs, forward_path, forward_expansion_filter, home_mailbox,
 *   mail_spool_directory, mailbox_command, command_expansion_filter, local_command_shell,
 *   mailbox_transport, fallback_transport, luser_relay, recipient_delimiter,
 *   mailbox_size_limit, command_time_limit (local_time_limit), export_environment, myorigin,
 *   mydestination.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import type { MainConfig } from '../global/mail-conf.ts';
import { macExpand } from '../util/mac-expand.ts';
import { Maps } from '../global/maps.ts';
import { extensionIndex } from '../global/mail-addr-find.ts';
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../global/deliver-request.ts';
import { parseTransportNexthop, redirectResult, type DeliverRedirect } from '../global/deliver-redirect.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { CleanupSession, type CleanupSettings } from '../cleanup/cleanup.ts';
import { DictError } from '../util/dict.ts';
import { getpwnam, getpwuid, type PasswdEntry } from '../util/dict-unix.ts';
import { logger } from '../util/msg.ts';
import { hasDeliveredTo } from '../global/delivered-hdr.ts';
import { mailCopy } from '../global/mail-copy.ts';
import { commandEnv, runCommand } from '../global/pipe-command.ts';
import { splitTargets, parseTarget, parseTargetFile, AliasSyntaxError, type AliasTarget } from './local-token.ts';
import { forwardPaths, readForward } from './local-dotforward.ts';
import { deliverToFile, type Privs } from './local-file.ts';
import { deliverHomeMailbox, deliverSpool } from './local-mailbox.ts';

const log = logger('local');
const isRoot = process.getuid?.() === 0;
const MAX_LEVEL = 100;

export interface LocalDeps {
  /** Where forwarded mail is queued (default: queue_directory). */
  queue?: MailQueue;
  cleanup?: CleanupSettings;
  /** Is this domain ours (mydestination)? Default: a literal match against mydestination. */
  isLocalDomain?: (domain: string) => boolean;
}

type Status = RecipientResult['status'];
interface Outcome { status: Status; dsn: string; text: string; redirect?: DeliverRedirect }

type Context = 'alias' | 'forward' | 'include';

interface State {
  req: DeliverRequest;
  content: Buffer;
  /** The top-level recipient (Delivered-To:, frozen_delivered_to = yes). */
  top: QueueRecipient;
  /** Addresses to re-submit, per envelope sender. */
  forwards: Map<string, Set<string>>;
  /** Lower-cased addresses already handled in this delivery (Postfix been_here). */
  seen: Set<string>;
}

interface Walk {
  sender: string;
  level: number;
  /** Ancestors in the expansion (loop detection). */
  path: string[];
  privs?: Privs;
  context?: Context;
  /** Name whose expansion this is (a name expanding to itself goes to the mailbox). */
  expFrom?: string;
}

interface Settings {
  aliasMaps: Maps;
  aliasOwner?: number;
  myorigin: string;
  delim: string;
  mydest: Set<string>;
}

function worst(a: Outcome, b: Outcome): Outcome {
  const rank = (o: Outcome) => (o.status === 'deferred' ? 2 : o.status === 'bounced' ? 1 : 0);
  return rank(b) > rank(a) ? b : a;
}

const SENT = (text: string): Outcome => ({ status: 'sent', dsn: '2.0.0', text });

export async function createLocalAgent(config: MainConfig, deps: LocalDeps = {}): Promise<DeliveryAgent> {
  const s: Settings = {
    aliasMaps: await Maps.open(config.get('alias_maps'), { ...config.dictFlags, paramName: 'alias_maps' }),
    myorigin: config.get('myorigin'),
    delim: config.get('recipient_delimiter'),
    mydest: new Set(config.list('mydestination').map((d) => d.toLowerCase())),
  };
  // Postfix alias.c: alias commands/files run as the alias table's owner unless that is root.
  for (const d of s.aliasMaps.dicts) {
    const st = await fsp.stat(d.name).catch(() => undefined);
    if (st && st.uid !== 0) { s.aliasOwner = st.uid; break; }
  }
  const isLocalDomain = deps.isLocalDomain ?? ((d: string) => s.mydest.has(d.toLowerCase()) || d.toLowerCase() === 'localhost');
  let queue = deps.queue;
  const cleanup: CleanupSettings = deps.cleanup ?? { myhostname: config.get('myhostname'), myorigin: s.myorigin, headerSizeLimit: config.int('header_size_limit'), messageSizeLimit: 0, alwaysAddMissingHeaders: false };

  const defaultPrivs = (): Privs | undefined => {
    const pw = getpwnam(config.get('default_privs'));
    return pw && pw.uid !== 0 ? { uid: pw.uid, gid: pw.gid, name: pw.name } : undefined;
  };
  const allowed = (param: string, ctx: Context | undefined) => ctx === undefined || config.list(param).map((x) => x.toLowerCase()).includes(ctx);

  async function deliverRecipient(st: State, r: QueueRecipient): Promise<Outcome> {
    if (hasDeliveredTo(st.content, r.address)) return { status: 'bounced', dsn: '5.4.6', text: `mail forwarding loop for ${r.address}` };
    const out = await deliverAddress(st, r.address, { sender: st.req.qf.sender, level: 0, path: [] });
    const fw = await flushForwards(st);
    if (!fw) return out;
    if (out.status === 'sent' && fw.status === 'sent') return out.text === 'forwarded' ? fw : { ...out, text: `${out.text}; ${fw.text}` };
    return worst(out, fw);
  }

  /** One address: local → recursion, remote → forward. */
  async function deliverAddress(st: State, address: string, w: Walk, noExpand = false): Promise<Outcome> {
    const at = address.lastIndexOf('@');
    const domain = at < 0 ? '' : address.slice(at + 1);
    if (domain !== '' && !isLocalDomain(domain)) {
      const key = address.toLowerCase();
      if (st.seen.has(key)) return SENT('duplicate suppressed');
      st.seen.add(key);
      return forward(st, w.sender, address);
    }
    const localPart = at < 0 ? address : address.slice(0, at);
    return deliverLocal(st, localPart, domain || s.myorigin, w, noExpand);
  }

  async function deliverLocal(st: State, localPart: string, domain: string, w: Walk, noExpand: boolean): Promise<Outcome> {
    const name = localPart.toLowerCase();
    const x = extensionIndex(name, s.delim);
    const user = x < 0 ? name : name.slice(0, x);
    const extension = x < 0 ? '' : localPart.slice(x + 1);
    // A name in its own expansion: from its alias → skip the alias (then .forward, mailbox);
    // from its .forward (or written \name) → straight to the mailbox (Postfix recipient.c).
    const self = w.expFrom !== undefined && (w.expFrom === name || w.expFrom === user);
    const mode = noExpand || (self && w.context === 'forward') ? '\\' : self ? '\\a' : '';
    const key = `${name}@${domain.toLowerCase()}${mode}`;
    if (w.path.includes(key)) return { status: 'bounced', dsn: '5.4.6', text: `mail forwarding loop for ${name}@${domain}` };
    if (w.level > MAX_LEVEL) return { status: 'bounced', dsn: '5.4.6', text: `unreasonable alias or .forward nesting for ${name}@${domain}` };
    if (st.seen.has(key)) return SENT('duplicate suppressed');
    st.seen.add(key);
    const ww: Walk = { ...w, path: [...w.path, key], level: w.level + 1 };

    // 1. aliases
    if (mode === '') {
      let value: string | undefined;
      let aliasName = name;
      try {
        value = await s.aliasMaps.find(name);
        if (value === undefined && x >= 0) { aliasName = user; value = await s.aliasMaps.find(user); }
      } catch (e) {
        if (e instanceof DictError) return { status: 'deferred', dsn: '4.3.0', text: `alias database unavailable: ${e.message}` };
        throw e;
      }
      if (value !== undefined) return expandAlias(st, aliasName, value, ww);
    }
    const pw = getpwnam(user);
    if (!pw) {
      // Not an alias, not a UNIX account.
      const fb = parseTransportNexthop(config.get('fallback_transport'), st.req.nexthop);
      if (fb) return ww.path.length > 1 ? forward(st, w.sender, `${name}@${domain}`) : redirectTo(fb);
      const relay = config.get('luser_relay');
      if (relay) {
        const to = macExpand(relay, (n) => ({ user, local: name, extension, domain, recipient: `${name}@${domain}`, recipient_delimiter: s.delim } as Record<string, string>)[n] || undefined, { recurse: false });
        if (to && to.toLowerCase() !== `${name}@${domain}`.toLowerCase()) return deliverAddress(st, to.includes('@') ? to : `${to}@${s.myorigin}`, { ...ww, expFrom: name }, true);
      }
      return { status: 'bounced', dsn: '5.1.1', text: `unknown user: "${name}"` };
    }
    // 2. ~/.forward (not for a name reached by \name or by its own .forward)
    if (mode !== '\\') {
      const paths = forwardPaths(config.rawOrDefault('forward_path') ?? '', {
        user, home: pw.dir, shell: pw.shell, recipient: `${name}@${domain}`, extension, domain, local: name, recipient_delimiter: s.delim,
      }, config.get('forward_expansion_filter'));
      const f = await readForward(paths, pw.uid);
      if (f && 'skipped' in f) log.warn(`${st.req.qf.queueId}: ${f.skipped}: ignored`);
      else if (f) {
        let targets: AliasTarget[];
        try { targets = parseTargetFile(f.text); } catch (e) { return { status: 'deferred', dsn: '4.3.0', text: `${f.path}: ${(e as Error).message}` }; }
        if (targets.length) return expandTargets(st, targets, { ...ww, privs: userPrivs(pw), context: 'forward', expFrom: user });
      }
    }
    // 3. mailbox
    return deliverMailbox(st, pw, user, name, extension, domain, ww);
  }

  /**
   * A redirect names no address: it stands for the top-level recipient. An address reached
   * through an expansion that needs another transport is re-submitted instead (a new queue
   * file), so that qmgr sees it as a recipient of its own and local(8) redirects it then.
   */
  function forward(st: State, sender: string, address: string): Outcome {
    let set = st.forwards.get(sender);
    if (!set) st.forwards.set(sender, set = new Set());
    set.add(address);
    return SENT('forwarded');
  }

  function redirectTo(to: DeliverRedirect): Outcome {
    return { status: 'deferred', dsn: '4.3.0', text: `mail transport redirect to ${to.transport}:${to.nexthop}`, redirect: to };
  }

  function userPrivs(pw: PasswdEntry): Privs | undefined {
    if (pw.uid !== 0) return { uid: pw.uid, gid: pw.gid, name: pw.name };
    return defaultPrivs(); // mail for root is delivered with default_privs
  }

  async function expandAlias(st: State, name: string, value: string, w: Walk): Promise<Outcome> {
    let sender = w.sender;
    // owner-NAME (Postfix alias.c): errors in NAME's expansion go to its owner.
    if (!name.startsWith('owner-')) {
      const owner = await s.aliasMaps.find(`owner-${name}`).catch(() => undefined);
      if (owner !== undefined) {
        sender = config.bool('expand_owner_alias') ? (splitTargets(owner)[0] ?? `owner-${name}@${s.myorigin}`) : `owner-${name}@${s.myorigin}`;
        if (!sender.includes('@')) sender = `${sender}@${s.myorigin}`;
      }
    }
    let targets: AliasTarget[];
    try { targets = splitTargets(value).map(parseTarget); } catch (e) {
      if (e instanceof AliasSyntaxError) return { status: 'deferred', dsn: '4.3.0', text: `alias ${name}: ${e.message}` };
      throw e;
    }
    const ownerPw = s.aliasOwner !== undefined ? getpwuid(s.aliasOwner) : undefined;
    const privs = ownerPw ? { uid: ownerPw.uid, gid: ownerPw.gid, name: ownerPw.name } : defaultPrivs();
    return expandTargets(st, targets, { ...w, sender, privs, context: 'alias', expFrom: name });
  }

  async function expandTargets(st: State, targets: AliasTarget[], w: Walk): Promise<Outcome> {
    let out: Outcome = SENT('delivered');
    let any = false;
    for (const t of targets) {
      const o = await deliverTarget(st, t, w);
      out = any ? worst(out, o) : o;
      any = true;
    }
    return out;
  }

  async function deliverTarget(st: State, t: AliasTarget, w: Walk): Promise<Outcome> {
    const qid = st.req.qf.queueId;
    switch (t.kind) {
      case 'address':
        return deliverAddress(st, t.address, w, t.noExpand);
      case 'include': {
        if (w.level > MAX_LEVEL) return { status: 'bounced', dsn: '5.4.6', text: `unreasonable :include: nesting: ${t.path}` };
        const read = await readInclude(t.path, w.privs);
        if ('error' in read) return read.error;
        let targets: AliasTarget[];
        try { targets = parseTargetFile(read.text); } catch (e) { return { status: 'deferred', dsn: '4.3.0', text: `${t.path}: ${(e as Error).message}` }; }
        const owner = read.uid !== 0 ? getpwuid(read.uid) : undefined;
        return expandTargets(st, targets, { ...w, level: w.level + 1, context: 'include', privs: owner ? { uid: owner.uid, gid: owner.gid, name: owner.name } : w.privs });
      }
      case 'file': {
        if (!allowed('allow_mail_to_files', w.context)) return { status: 'bounced', dsn: '5.7.1', text: `mail to file is restricted` };
        if (!w.privs) return { status: 'deferred', dsn: '4.3.0', text: `no unprivileged user for file delivery (default_privs = ${config.get('default_privs')} unknown or root)` };
        const key = `file:${t.path}`;
        if (st.seen.has(key)) return SENT('duplicate suppressed');
        st.seen.add(key);
        const msg = mailCopy(st.content, { sender: w.sender, recipient: st.top.address, originalRecipient: st.top.orig ?? st.top.address, flags: 'RDO' });
        const r = await deliverToFile(t.path, w.sender, msg, w.privs, config.size('mailbox_size_limit'));
        if (r.status !== 'sent') log.warn(`${qid}: ${r.text}`);
        return r;
      }
      case 'command': {
        if (!allowed('allow_mail_to_commands', w.context)) return { status: 'bounced', dsn: '5.7.1', text: `mail to command is restricted` };
        if (!w.privs) return { status: 'deferred', dsn: '4.3.0', text: `no unprivileged user for command delivery (default_privs = ${config.get('default_privs')} unknown or root)` };
        const key = `cmd:${t.command}`;
        if (st.seen.has(key)) return SENT('duplicate suppressed');
        st.seen.add(key);
        const pw = getpwuid(w.privs.uid);
        return runShell(st, t.command, w, pw, { home: pw?.dir ?? '/', user: w.privs.name, shell: pw?.shell ?? '/bin/sh', local: '', extension: '', domain: '' });
      }
    }
  }

  async function runShell(st: State, command: string, w: Walk, pw: PasswdEntry | undefined, v: { home: string; user: string; shell: string; local: string; extension: string; domain: string }): Promise<Outcome> {
    const top = st.top;
    const env = commandEnv(config.get('export_environment'), {
      HOME: v.home, USER: v.user, LOGNAME: v.user, SHELL: v.shell,
      SENDER: w.sender, RECIPIENT: top.address, ORIGINAL_RECIPIENT: top.orig ?? top.address,
      LOCAL: v.local, EXTENSION: v.extension, DOMAIN: v.domain,
      ...(st.req.qf.attr('client_address') ? { CLIENT_ADDRESS: st.req.qf.attr('client_address')! } : {}),
      ...(st.req.qf.attr('client_name') ? { CLIENT_HOSTNAME: st.req.qf.attr('client_name')! } : {}),
      ...(st.req.qf.attr('helo_name') ? { CLIENT_HELO: st.req.qf.attr('helo_name')! } : {}),
      ...(st.req.qf.attr('protocol_name') ? { CLIENT_PROTOCOL: st.req.qf.attr('protocol_name')! } : {}),
      ...(st.req.qf.attr('sasl_username') ? { SASL_USERNAME: st.req.qf.attr('sasl_username')! } : {}),
    });
    const input = mailCopy(st.content, { sender: w.sender, recipient: top.address, originalRecipient: top.orig ?? top.address, flags: 'FROD' });
    const cwd = await fsp.stat(v.home).then((x) => (x.isDirectory() ? v.home : '/'), () => '/');
    const r = await runCommand({
      shellCommand: command, shell: config.get('local_command_shell') || undefined,
      uid: isRoot ? w.privs!.uid : undefined, gid: isRoot ? w.privs!.gid : undefined, cwd,
      env, input, timeLimitMs: config.time('local_time_limit') * 1000, signal: st.req.signal,
    });
    void pw;
    if (r.status === 'sent') return SENT(`delivered to command: ${command}`);
    log.warn(`${st.req.qf.queueId}: command ${command}: ${r.text}`);
    return r;
  }

  async function readInclude(path: string, privs: Privs | undefined): Promise<{ text: string; uid: number } | { error: Outcome }> {
    const st = await fsp.stat(path).catch((e: Error) => e);
    if (st instanceof Error) return { error: { status: 'deferred', dsn: '4.3.0', text: `cannot open include file ${path}: ${st.message}` } };
    if (!st.isFile()) return { error: { status: 'bounced', dsn: '5.3.5', text: `include file ${path}: not a regular file` } };
    if (!isRoot) {
      const text = await fsp.readFile(path, 'utf8').catch((e: Error) => e);
      if (text instanceof Error) return { error: { status: 'deferred', dsn: '4.3.0', text: `cannot open include file ${path}: ${text.message}` } };
      return { text, uid: st.uid };
    }
    if (!privs) return { error: { status: 'deferred', dsn: '4.3.0', text: 'no unprivileged user to read the include file' } };
    // Read with the rights of whoever named the file: a user cannot :include: /etc/shadow.
    const text = await new Promise<string | Error>((resolve) => {
      const c = spawn('/bin/cat', ['--', path], { uid: privs.uid, gid: privs.gid, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
      const out: Buffer[] = [];
      let err = '';
      c.stdout!.on('data', (b: Buffer) => out.push(b));
      c.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
      c.on('error', (e) => resolve(e));
      c.on('close', (code) => resolve(code === 0 ? Buffer.concat(out).toString('utf8') : new Error(err.trim().replace(/^\/bin\/cat: /, '') || `exit ${code}`)));
    });
    if (text instanceof Error) return { error: { status: 'deferred', dsn: '4.3.0', text: `cannot open include file ${path}: ${text.message}` } };
    return { text, uid: st.uid };
  }

  async function deliverMailbox(st: State, pw: PasswdEntry, user: string, local: string, extension: string, domain: string, w: Walk): Promise<Outcome> {
    const mt = parseTransportNexthop(config.get('mailbox_transport'), st.req.nexthop);
    if (mt) return w.path.length > 1 ? forward(st, w.sender, `${local}@${domain}`) : redirectTo(mt);
    const privs = userPrivs(pw);
    if (!privs) return { status: 'deferred', dsn: '4.3.0', text: `mail for ${user} (uid 0) needs default_privs, which is unknown or root` };
    const top = st.top;
    const cmd = config.rawOrDefault('mailbox_command') ?? '';
    if (cmd.trim()) {
      const filter = config.get('command_expansion_filter');
      const vars: Record<string, string> = { user, home: pw.dir, shell: pw.shell, local, extension, domain, recipient: top.address, sender: w.sender, original_recipient: top.orig ?? top.address, recipient_delimiter: s.delim, mailbox: local };
      // local(8) expands only its own lower-case names; `$HOME`, `$EXTENSION` etc. are left
      // for the shell (postconf(5) mailbox_command: "not subjected to $name substitutions").
      const expanded = cmd.replace(/\$(?:\{(\w+)\}|\((\w+)\)|(\w+))/g, (m, a?: string, b?: string, c?: string) => {
        const n = (a ?? b ?? c)!;
        if (!Object.hasOwn(vars, n)) return m;
        const v = vars[n]!;
        return n === 'home' || n === 'shell' ? v : [...v].map((ch) => (filter.includes(ch) ? ch : '_')).join('');
      });
      return runShell(st, expanded, { ...w, privs }, pw, { home: pw.dir, user, shell: pw.shell, local, extension, domain });
    }
    const msg = mailCopy(st.content, { sender: w.sender, recipient: top.address, originalRecipient: top.orig ?? top.address, flags: 'RDO' });
    const limit = config.size('mailbox_size_limit');
    const home = config.get('home_mailbox');
    const r = home
      ? await deliverHomeMailbox(pw.dir, home, w.sender, msg, privs, limit)
      : await deliverSpool(config.get('mail_spool_directory'), user, w.sender, msg, privs, limit);
    if (r.status !== 'sent') log.warn(`${st.req.qf.queueId}: ${r.text}`);
    return r;
  }

  async function flushForwards(st: State): Promise<Outcome | undefined> {
    if (st.forwards.size === 0) return undefined;
    queue ??= new MailQueue(config.get('queue_directory'));
    const ids: string[] = [];
    const headers = Buffer.from(`Delivered-To: ${st.top.address.toLowerCase()}\n`);
    try {
      for (const [sender, rcpts] of st.forwards) {
        const c = await CleanupSession.open(cleanup, queue, { sender, attrs: { log_ident: st.req.qf.queueId }, addMissingHeaders: false });
        for (const a of rcpts) c.addRecipient({ address: a });
        await c.write(Buffer.concat([headers, st.content]));
        const r = await c.finish();
        if ('reject' in r) return { status: 'deferred', dsn: '4.3.0', text: `cannot forward: ${r.reject.text}` };
        ids.push(r.queueId);
      }
    } catch (e) {
      return { status: 'deferred', dsn: '4.3.0', text: `cannot forward: ${(e as Error).message}` };
    } finally {
      st.forwards.clear();
    }
    return SENT(`forwarded as ${ids.join(', ')}`);
  }

  return {
    name: 'local',
    async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
      const out: RecipientResult[] = [];
      let content: Buffer | undefined;
      for (const r of req.recipients) {
        if (req.signal?.aborted) { out.push({ recipient: r, status: 'deferred', dsn: '4.3.0', text: 'delivery interrupted', relay: 'local' }); continue; }
        try {
          content ??= await req.qf.content();
          const st: State = { req, content, top: r, forwards: new Map(), seen: new Set() };
          const o = await deliverRecipient(st, r);
          if (o.redirect) out.push(redirectResult(r, o.redirect, 'local'));
          else out.push({ recipient: r, status: o.status, dsn: o.dsn, text: o.text, relay: 'local' });
        } catch (e) {
          log.warn(`${req.qf.queueId}: ${r.address}: ${(e as Error).message}`);
          out.push({ recipient: r, status: 'deferred', dsn: '4.3.0', text: `mail system error: ${(e as Error).message}`, relay: 'local' });
        }
      }
      return out;
    },
  };
}
