/**
 * milters - the list of milters of one SMTP connection or one local submission (Postfix
 * src/milter/milter.c): each event goes to each milter in turn with the macros its stage
 * asks for, and the first decision other than "go on" is the answer.
 *
 * SUMMARY
 *   const m = Milters.create(milterConfig(config, 'smtpd_milters')!, lookup, log);
 *   await m.connect(name, addr, port, family) → reply;  m.helo(name);  m.mail(argv);
 *   m.rcpt(argv, rejected);  m.data();  m.unknown(cmd);  m.message(editor);  m.abort();  m.quit()
 *
 * DESCRIPTION
 *   Replies are Postfix's internal form (milter8.ts): undefined, "4xx/5xx text", "D", "H...",
 *   "S". Macros: each milter gets the stage's list from main.cf (milter_*_macros) unless it
 *   asked for its own in the negotiation; a macro with no value is left out, or takes its
 *   milter_macro_defaults value. `lookup` answers the values (smtpd: its session state; cleanup:
 *   the queue file's attributes for non_smtpd_milters).
 *
 *   The connections are opened at connect(), all at once, each within its connect timeout.
 *   message() implements global/milter-message.ts: after each milter's final reply its edits are
 *   applied to the message before the next milter sees it.
 */
import { SMFIC, SMFIM, SMFIP, cstr } from './milter-protocol.ts';
import { Milter8, type MilterReply } from './milter8.ts';
import { bare, type MacroLists, type MilterConfig } from './milter-config.ts';
import type { MessageMilters, MilterMessageEditor } from '../global/milter-message.ts';

/** A macro's value now, or undefined (name without braces: "i", "daemon_name", "_"). */
export type MacroLookup = (name: string) => string | undefined;

export class Milters implements MessageMilters {
  readonly list: Milter8[];
  private readonly cfg: MilterConfig;
  lookup: MacroLookup;
  private connected = false;

  private constructor(cfg: MilterConfig, lookup: MacroLookup, warn: (t: string) => void) {
    this.cfg = cfg;
    this.lookup = lookup;
    this.list = cfg.milters.map((s) => new Milter8(s, warn));
  }

  static create(cfg: MilterConfig, lookup: MacroLookup, warn: (t: string) => void): Milters {
    return new Milters(cfg, lookup, warn);
  }

  private macros(m: Milter8, stage: number, key: keyof MacroLists): [string, string][] {
    const override = m.macroOverride.get(stage);
    const names = override !== undefined ? override.split(/[\s,]+/).filter(Boolean) : this.cfg.macros[key];
    const out: [string, string][] = [];
    for (const n of names) {
      const b = bare(n);
      const v = this.lookup(b) ?? this.cfg.defaults.get(b);
      if (v !== undefined) out.push([n, v]);
    }
    return out;
  }

  /** Run one event over the list: the first decision wins. */
  private async each(cmd: string, fn: (m: Milter8) => Promise<MilterReply>, skip?: (m: Milter8) => boolean): Promise<MilterReply> {
    for (const m of this.list) {
      if (skip?.(m)) continue;
      const r = m.takes(cmd) ? await fn(m) : m.reply;
      if (r !== undefined) return r;
    }
    return undefined;
  }

  async connect(clientName: string, clientAddr: string, port: number, family: 'inet' | 'inet6' | 'unix' | 'unknown'): Promise<MilterReply> {
    if (!this.connected) {
      this.connected = true;
      await Promise.all(this.list.map((m) => m.connect()));
    }
    for (const m of this.list) {
      const r = await m.connectEvent(clientName, clientAddr, port, family, this.macros(m, SMFIM.CONNECT, 'conn'));
      if (r !== undefined) return r;
    }
    return undefined;
  }

  helo(name: string): Promise<MilterReply> {
    return this.each(SMFIC.HELO, (m) => m.event(SMFIC.HELO, SMFIP.NOHELO, SMFIP.NR_HELO, this.macros(m, SMFIM.HELO, 'helo'), cstr(name)));
  }

  /** MAIL FROM: argv is the address in <>, then the ESMTP parameters. */
  mail(argv: string[]): Promise<MilterReply> {
    return this.each(SMFIC.MAIL, (m) => m.event(SMFIC.MAIL, SMFIP.NOMAIL, SMFIP.NR_MAIL, this.macros(m, SMFIM.ENVFROM, 'mail'), ...argv.map((a) => cstr(a))));
  }

  /** RCPT TO; `rejected`: smtpd refused it already (only milters with SMFIP_RCPT_REJ see it). */
  rcpt(argv: string[], rejected: boolean): Promise<MilterReply> {
    return this.each(SMFIC.RCPT, (m) => m.event(SMFIC.RCPT, SMFIP.NORCPT, SMFIP.NR_RCPT, this.macros(m, SMFIM.ENVRCPT, 'rcpt'), ...argv.map((a) => cstr(a))),
      (m) => rejected && !m.wantsRejectedRcpt);
  }

  data(): Promise<MilterReply> {
    return this.each(SMFIC.DATA, (m) => m.event(SMFIC.DATA, SMFIP.NODATA, SMFIP.NR_DATA, this.macros(m, SMFIM.DATA, 'data')));
  }

  unknown(command: string): Promise<MilterReply> {
    return this.each(SMFIC.UNKNOWN, (m) => m.event(SMFIC.UNKNOWN, SMFIP.NOUNKNOWN, SMFIP.NR_UNKN, this.macros(m, -1, 'unk'), cstr(command)));
  }

  /** A command the milters have no event for (AUTH, STARTTLS, VRFY...): the standing replies. */
  other(): MilterReply {
    for (const m of this.list) if (m.reply !== undefined) return m.reply;
    return undefined;
  }

  async message(editor: MilterMessageEditor): Promise<string | undefined> {
    for (const m of this.list) {
      const r = await m.message(editor.current(), this.macros(m, SMFIM.EOH, 'eoh'), this.macros(m, SMFIM.EOM, 'eod'), editor.sizeLimit);
      if (r.edits.length) {
        const err = await editor.apply(m.name, r.edits);
        if (err) return err;
      }
      if (r.reply !== undefined) return r.reply;
    }
    return undefined;
  }

  async abort(): Promise<void> {
    await Promise.all(this.list.map((m) => m.abort()));
  }

  async quit(): Promise<void> {
    await Promise.all(this.list.map((m) => m.quit()));
  }
}
