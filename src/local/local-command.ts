/**
 * local-command - delivery to a shell command (Postfix local/command.c): a `|command` target of
 * an alias, .forward or :include: file, and mailbox_command (local-mailbox.ts). The command
 * runs through local_command_shell (default /bin/sh -c) with the target's rights, in the
 * user's home directory when it exists (else /), with Postfix's environment (HOME USER LOGNAME
 * SHELL SENDER RECIPIENT ORIGINAL_RECIPIENT LOCAL EXTENSION DOMAIN and the CLIENT_* attributes,
 * plus export_environment), for at most local_time_limit; its input is the message with a
 * From_ line, Return-Path:, X-Original-To: and Delivered-To: (global/mail-copy.ts, flags FROD).
 * The exit status maps as Postfix's (global/pipe-command.ts). allow_mail_to_commands limits
 * which expansions may name commands (bounce 5.7.1 "mail to command is restricted").
 */
import { promises as fsp } from 'node:fs';
import { mailCopy } from '../global/mail-copy.ts';
import { commandEnv, runCommand } from '../global/pipe-command.ts';
import { getpwuid, type PasswdEntry } from '../util/dict-unix.ts';
import { allowed, isRoot, log, SENT, traced, type Outcome, type State, type Walk } from './local-state.ts';

/** The variables of the command's environment that depend on the recipient. */
export interface CommandVars { home: string; user: string; shell: string; local: string; extension: string; domain: string }

/** A `|command` target (the expansion's rights; run once per delivery). */
export async function deliverCommandTarget(st: State, command: string, w: Walk): Promise<Outcome> {
  const { config } = st.lc;
  if (!allowed(config, 'allow_mail_to_commands', w.context)) return { status: 'bounced', dsn: '5.7.1', text: `mail to command is restricted` };
  if (!w.privs) return { status: 'deferred', dsn: '4.3.0', text: `no unprivileged user for command delivery (default_privs = ${config.get('default_privs')} unknown or root)` };
  if (st.req.verify) return traced(st, st.top.address, SENT(`delivers to command: ${command}`));
  const key = `cmd:${command}`;
  if (st.seen.has(key)) return SENT('duplicate suppressed');
  st.seen.add(key);
  const pw = getpwuid(w.privs.uid);
  return runShell(st, command, w, pw, { home: pw?.dir ?? '/', user: w.privs.name, shell: pw?.shell ?? '/bin/sh', local: '', extension: '', domain: '' });
}

/** Run `command` with w.privs's rights (see the header). */
export async function runShell(st: State, command: string, w: Walk, pw: PasswdEntry | undefined, v: CommandVars): Promise<Outcome> {
  const { config } = st.lc;
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
