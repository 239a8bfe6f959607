/**
 * mail-namespace - Dovecot's shared namespace (doc/wiki SharedMailboxes.Shared):
 *
 *     namespace {
 *       type = shared
 *       separator = /
 *       prefix = shared/%%u/
 *       location = maildir:%%h/Maildir:INDEX=~/Maildir/shared/%%u
 *     }
 *     plugin { acl = vfile   acl_shared_dict = file:/var/lib/dovecot/shared-mailboxes.db }
 *
 * `SharedNamespaceUser` is the logged-in user's MailUser with the other users' mailboxes
 * under `shared/OWNER/`: a name there is the mailbox of OWNER (opened through the caller's
 * `openUser`, which reads the user directory and opens OWNER's own mail location — the
 * namespace's `location` is not parsed); every other name is the user's own. Mailboxes opened
 * keep the full name, and COPY/MOVE between owners read and save each message.
 * LIST finds the owners in `acl_shared_dict` (mail-acl-shared.ts: the users that gave this user,
 * or anyone, the lookup right somewhere), as Dovecot; `shared` and `shared/OWNER` are \Noselect.
 * `type = public` namespaces (prefix `Public/`, a `location` of nobody's) route the same way:
 * their mailboxes' owner is `public:PREFIX`, so nobody is the owner and only ACL entries give
 * rights. Rights (who may do what) are the caller's business (imapd-acl.ts), with `mailboxOwner()`.
 * Flags are shared between the users, except \Seen when the namespace's location has INDEXPVT
 * (`conf.indexPvt`): each reader then has their own (mail-private-flags.ts). RENAME across owners is
 * refused as Dovecot refuses it (`Can't rename mailboxes across specified storages`).
 */
import { MailError } from './mail-error.ts';
import type { AclEntry, MailboxAcl } from './mail-acl.ts';
import { sharedOwnersFor, updateSharedDict } from './mail-acl-shared.ts';
import type { MailboxListEvent,
  CopyResult, DeliverOptions, DeliverResult, Mailbox, MailboxInfo, MailboxStatus, MailUser, MessageSource, QuotaUsage,
} from './mail-storage.ts';
import type { MailAttributes } from './mail-attribute.ts';
import { privateSeenFile, privateSeenMailbox, privateStatus } from './mail-private-flags.ts';

export interface SharedNamespaceConf {
  /** The shared namespace's prefix up to `%u` ("shared/"); '' when there is none. */
  prefix: string;
  /** acl_shared_dict's file (file:PATH), if set. */
  dictPath?: string;
  /** The user's ACL groups (userdb acl_groups), for the dict's group entries. */
  groups?: readonly string[];
  /**
   * INDEXPVT of the shared namespace's location: the reader's directory of private flags for an
   * owner's mailboxes (mail-private-flags.ts); absent = flags are shared.
   */
  indexPvt?: (owner: string) => string;
  /** `type = public` namespaces: their prefix ("Public/") and how to open their mail location. */
  publics?: { prefix: string; open: () => Promise<MailUser | undefined> }[];
}

interface Route { user: MailUser; box: string; owner: string }

export class SharedNamespaceUser implements MailUser {
  readonly user: string;
  readonly separator: string;
  private readonly own: MailUser;
  private readonly conf: SharedNamespaceConf;
  private readonly openUser: (name: string) => Promise<MailUser | undefined>;
  private readonly others = new Map<string, Promise<MailUser | undefined>>();

  constructor(own: MailUser, conf: SharedNamespaceConf, openUser: (name: string) => Promise<MailUser | undefined>) {
    this.own = own;
    this.user = own.user;
    this.separator = own.separator;
    this.conf = conf;
    this.openUser = openUser;
  }

  /**
   * `shared/a@x/Foo` → a@x, Foo; `shared` and `shared/a@x` → undefined box (the namespace's
   * \Noselect levels). A public namespace's mailbox has the owner `public:PREFIX` (nobody's).
   */
  private split(name: string): { owner: string; box: string | undefined } | undefined {
    for (const pub of this.conf.publics ?? []) {
      if (name === pub.prefix.slice(0, -this.separator.length)) return { owner: `public:${pub.prefix}`, box: undefined };
      if (name.startsWith(pub.prefix)) return { owner: `public:${pub.prefix}`, box: name.slice(pub.prefix.length) };
    }
    const p = this.conf.prefix;
    if (p === '') return undefined;
    const root = p.endsWith(this.separator) ? p.slice(0, -1) : p;
    if (name === root) return { owner: '', box: undefined };
    if (!name.startsWith(p)) return undefined;
    const rest = name.slice(p.length);
    const i = rest.indexOf(this.separator);
    if (i < 0) return { owner: rest, box: undefined };
    const box = rest.slice(i + 1);
    return { owner: rest.slice(0, i), box: box.toUpperCase() === 'INBOX' ? 'INBOX' : box };
  }

  private other(owner: string): Promise<MailUser | undefined> {
    let u = this.others.get(owner);
    if (!u) {
      const pub = (this.conf.publics ?? []).find((p) => owner === `public:${p.prefix}`);
      u = owner === this.user ? Promise.resolve(this.own) : pub ? pub.open().catch(() => undefined) : this.openUser(owner).catch(() => undefined);
      this.others.set(owner, u);
    }
    return u;
  }

  private async route(name: string): Promise<Route> {
    const sp = this.split(name);
    if (!sp) return { user: this.own, box: name, owner: this.user };
    const u = sp.box !== undefined && sp.owner !== '' ? await this.other(sp.owner) : undefined;
    if (!u || sp.box === undefined) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${name}`);
    return { user: u, box: sp.box, owner: sp.owner };
  }

  /** The user whose mailbox a name is. */
  mailboxOwner(name: string): string {
    const sp = this.split(name);
    return sp ? sp.owner : this.user;
  }

  async list(): Promise<MailboxInfo[]> {
    // the own list's subscription-only entries of other namespaces' names are left out: those
    // namespaces list their mailboxes themselves (markSubscribed marks them)
    const mine = (await this.own.list()).filter((m) => !(m.nonExistent && this.split(m.name)));
    const out = [...mine];
    for (const pub of this.conf.publics ?? []) {
      const u = await this.other(`public:${pub.prefix}`);
      if (!u) continue;
      const items = (await u.list()).filter((m) => !m.nonExistent && m.name !== 'INBOX')
        .map((m) => ({ ...m, name: pub.prefix + m.name, attributes: m.attributes.filter((a) => a !== '\\Subscribed'), subscribed: false }));
      if (items.length > 0) out.push({ name: pub.prefix.slice(0, -this.separator.length), attributes: ['\\Noselect', '\\HasChildren'], subscribed: false, nonExistent: true }, ...items);
    }
    if (!this.conf.dictPath || this.conf.prefix === '') return this.markSubscribed(out);
    const owners = (await sharedOwnersFor(this.conf.dictPath, this.user, this.conf.groups ?? [])).filter((o) => o !== this.user);
    const root = this.conf.prefix.replace(/\/$/, '');
    const shared: MailboxInfo[] = [];
    for (const owner of owners) {
      const u = await this.other(owner);
      if (!u) continue;
      const boxes = (await u.list()).filter((m) => !m.nonExistent);
      const level: MailboxInfo = { name: `${this.conf.prefix}${owner}`, attributes: ['\\Noselect', '\\HasChildren'], subscribed: false, nonExistent: true };
      const items = boxes.map((m) => ({ ...m, name: `${this.conf.prefix}${owner}${this.separator}${m.name}`, attributes: m.attributes.filter((a) => a !== '\\Subscribed'), subscribed: false }));
      if (items.length > 0) shared.push(level, ...items);
    }
    if (shared.length > 0) out.push({ name: root, attributes: ['\\Noselect', '\\HasChildren'], subscribed: false, nonExistent: true }, ...shared);
    return this.markSubscribed(out);
  }

  private async markSubscribed(out: MailboxInfo[]): Promise<MailboxInfo[]> {
    const subs = new Set(await this.own.subscriptions());
    for (const m of out) if (subs.has(m.name) && !m.subscribed) { m.subscribed = true; m.attributes = [...m.attributes, '\\Subscribed']; }
    return out;
  }

  subscriptions(): Promise<string[]> { return this.own.subscriptions(); }
  setSubscribed(name: string, on: boolean): Promise<void> {
    // subscriptions = no in the shared/public namespaces: kept in the user's own file, as Dovecot
    return this.own.setSubscribed(name, on, this.split(name) ? { foreign: true } : undefined);
  }

  async create(name: string): Promise<void> { const r = await this.route(name); return r.user.create(r.box); }
  async delete(name: string): Promise<void> { const r = await this.route(name); return r.user.delete(r.box); }
  async rename(from: string, to: string): Promise<void> {
    const a = await this.route(from);
    const b = await this.route(to).catch(() => undefined);
    if (!b || a.user !== b.user) throw new MailError('PARAMS', 'Can\'t rename mailboxes across specified storages');
    return a.user.rename(a.box, b.box);
  }

  async exists(name: string): Promise<boolean> {
    const r = await this.route(name).catch(() => undefined);
    return r ? r.user.exists(r.box) : false;
  }

  async status(name: string): Promise<MailboxStatus> {
    const r = await this.route(name);
    const st = await r.user.status(r.box);
    const pvt = this.pvtFile(r);
    if (!pvt) return st;
    const box = await r.user.open(r.box, { readOnly: true });
    try { return privateStatus(pvt, st, box.messages().map((m) => m.uid)); } finally { await box.close(); }
  }
  /**
   * NOTIFY: the user's own namespace, and the owners (other users, public namespaces) of the
   * names in `o.foreign` — their mailboxes' message events under the full names here
   * (`shared/OWNER/box`, `Public/box`), as Dovecot notifies on the per-owner namespaces it made;
   * the bare shared root is no owner (Dovecot cannot notify on it). Their list changes are not
   * reported (LIST of the namespace shows them).
   */
  watchMailboxes(cb: (ev: MailboxListEvent) => void, o?: { wants?: (name: string) => boolean; foreign?: readonly string[] }): () => void {
    const offs: (() => void)[] = [];
    let stopped = false;
    if (this.own.watchMailboxes) offs.push(this.own.watchMailboxes(cb, { ...(o?.wants ? { wants: o.wants } : {}) }));
    const owners = new Map<string, string>(); // owner → prefix of its names here
    for (const n of o?.foreign ?? []) {
      const sp = this.split(n);
      if (!sp || sp.owner === '' || sp.owner === this.user) continue;
      const pub = (this.conf.publics ?? []).find((p) => sp.owner === `public:${p.prefix}`);
      owners.set(sp.owner, pub ? pub.prefix : `${this.conf.prefix}${sp.owner}${this.separator}`);
    }
    for (const [owner, prefix] of owners) {
      void this.other(owner).then((u) => {
        if (stopped || !u?.watchMailboxes) return;
        const wants = o?.wants;
        offs.push(u.watchMailboxes((ev) => { if (ev.kind === 'mailbox') cb({ kind: 'mailbox', name: prefix + ev.name }); },
          wants ? { wants: (n) => wants(prefix + n) } : {}));
      });
    }
    return () => { stopped = true; for (const off of offs.splice(0)) off(); };
  }

  async deliver(mailbox: string, content: MessageSource, o?: DeliverOptions): Promise<DeliverResult> {
    const r = await this.route(mailbox);
    return r.user.deliver(r.box, content, o);
  }

  quota(): Promise<QuotaUsage> { return this.own.quota(); }

  async specialUse(name: string): Promise<string[]> {
    const r = await this.route(name).catch(() => undefined);
    return r?.user.specialUse ? r.user.specialUse(r.box) : [];
  }

  async setSpecialUse(name: string, uses: readonly string[]): Promise<void> {
    const r = await this.route(name);
    if (!r.user.setSpecialUse) throw new MailError('PARAMS', 'Special-use attributes are not supported for this mailbox format');
    return r.user.setSpecialUse(r.box, uses);
  }

  async mailboxGuid(name: string): Promise<string> {
    const r = await this.route(name);
    if (!r.user.mailboxGuid) throw new MailError('PARAMS', 'This mailbox format keeps no mailbox GUID');
    return r.user.mailboxGuid(r.box);
  }

  attributes(dictUri: string): MailAttributes {
    if (!this.own.attributes) throw new MailError('PARAMS', 'METADATA is not supported for this mailbox format');
    return this.own.attributes(dictUri);
  }

  acl(): MailboxAcl {
    return {
      read: async (name: string): Promise<AclEntry[] | undefined> => {
        const r = await this.route(name);
        const a = r.user.acl?.();
        return a ? a.read(r.box) : undefined;
      },
      write: async (name: string, entries: readonly AclEntry[]): Promise<void> => {
        const r = await this.route(name);
        const a = r.user.acl?.();
        if (!a) throw new MailError('PARAMS', 'ACLs are not supported for this mailbox format');
        await a.write(r.box, entries);
        if (this.conf.dictPath && !r.owner.startsWith('public:')) await updateSharedDict(this.conf.dictPath, r.owner, r.user);
      },
      update: async (name: string, change: (entries: AclEntry[]) => AclEntry[] | undefined): Promise<boolean> => {
        const r = await this.route(name);
        const a = r.user.acl?.();
        if (!a) throw new MailError('PARAMS', 'ACLs are not supported for this mailbox format');
        const changed = await a.update(r.box, change);
        if (changed && this.conf.dictPath && !r.owner.startsWith('public:')) await updateSharedDict(this.conf.dictPath, r.owner, r.user);
        return changed;
      },
    };
  }

  async open(name: string, o?: { readOnly?: boolean }): Promise<Mailbox> {
    const r = await this.route(name);
    let box = await r.user.open(r.box, o);
    const pvt = this.pvtFile(r);
    if (pvt) box = privateSeenMailbox(box, pvt); // INDEXPVT: this reader's own \Seen
    return this.wrap(box, r, name);
  }

  /** The reader's private-\Seen file for another user's mailbox, when INDEXPVT is set. */
  private pvtFile(r: Route): string | undefined {
    if (!this.conf.indexPvt || r.owner === this.user || r.owner.startsWith('public:')) return undefined;
    return privateSeenFile(this.conf.indexPvt(r.owner), r.box);
  }

  /** The mailbox under its full name, with COPY/MOVE to any owner's mailbox. */
  private wrap(box: Mailbox, r: Route, fullName: string): Mailbox {
    const copyTo = async (uids: readonly number[], dest: string, move: boolean): Promise<CopyResult> => {
      const d = await this.route(dest);
      if (d.user === r.user) return move ? box.move(uids, d.box) : box.copy(uids, d.box);
      const map: Array<[number, number]> = [];
      let uidValidity = 0;
      for (const uid of uids) {
        const m = box.byUid(uid);
        if (!m) continue;
        const content = await box.readContent(uid).catch(() => undefined);
        if (!content) continue;
        const res = await d.user.deliver(d.box, content, { flags: [...m.flags], keywords: [...m.keywords], internalDate: await box.internalDate(uid), ignoreQuota: false });
        map.push([uid, res.uid]);
        uidValidity = res.uidValidity;
      }
      if (move && map.length > 0) await box.expunge(map.map(([u]) => u));
      return { uidValidity, map };
    };
    return new Proxy(box, {
      get(t, p) {
        if (p === 'name') return fullName;
        if (p === 'copy') return (uids: readonly number[], dest: string) => copyTo(uids, dest, false);
        if (p === 'move') return (uids: readonly number[], dest: string) => copyTo(uids, dest, true);
        const v = Reflect.get(t, p, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  }

  async close(): Promise<void> {
    for (const [owner, p] of this.others) {
      if (owner === this.user) continue;
      const u = await p;
      await u?.close().catch(() => undefined);
    }
    this.others.clear();
    await this.own.close();
  }
}

