/**
 * bench-site - the one site description both systems are configured from: the seed document's
 * virtual-mailbox example (virtual_mailbox_domains = myoffice.space, virtual_mailbox_maps =
 * hash:vmailbox, virtual_alias_maps = hash:virtual, static uid/gid 5000) with 100 users
 * (user1 ... user100@myoffice.space) plus postmaster@ as a virtual alias.
 *
 * The table sources are written once; `postmap` builds Postfix's Berkeley DB index (FILE.db)
 * and `postern map` builds Postern's (FILE.pdb) next to it, so both read the same text.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SITE_DOMAIN = 'myoffice.space';
export const SITE_USERS = 100;
/** The recipient every SMTP scenario sends to (a listed virtual mailbox). */
export const BENCH_RECIPIENT = `user1@${SITE_DOMAIN}`;
export const BENCH_SENDER = 'from@example.org';

const POSTERN = join(import.meta.dirname, '../bin/postern');

export interface Site {
  dir: string;
  /** main.cf lines for both systems (the reference adds its own queue/log settings). */
  mainCf: string;
}

export function writeSite(dir: string): Site {
  mkdirSync(dir, { recursive: true });
  // Postfix's smtpd runs as user postfix and must read the tables.
  chmodSync(dir, 0o755);
  const vmailbox: string[] = ['# the seed\'s /etc/postfix/vmailbox, 100 users'];
  for (let i = 1; i <= SITE_USERS; i++) vmailbox.push(`user${i}@${SITE_DOMAIN} ${SITE_DOMAIN}/user${i}/`);
  writeFileSync(join(dir, 'vmailbox'), vmailbox.join('\n') + '\n');
  writeFileSync(join(dir, 'virtual'), `postmaster@${SITE_DOMAIN} user1@${SITE_DOMAIN}\n`);
  // postmap wants a main.cf in its -c directory; backdated so Postfix does not wait for it.
  writeFileSync(join(dir, 'main.cf'), '');
  const past = new Date(Date.now() - 3600_000);
  utimesSync(join(dir, 'main.cf'), past, past);
  for (const t of ['vmailbox', 'virtual']) {
    execFileSync('/usr/sbin/postmap', ['-c', dir, `hash:${join(dir, t)}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync(POSTERN, ['map', `hash:${join(dir, t)}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  mkdirSync(join(dir, 'vhosts'), { recursive: true });
  const mainCf = [
    'compatibility_level = 3.6',
    'myhostname = mx.myoffice.space',
    'mydomain = myoffice.space',
    'myorigin = $mydomain',
    'mydestination = localhost',
    'mynetworks = 127.0.0.0/8',
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'smtpd_peername_lookup = no',
    'smtp_dns_support_level = disabled',
    'disable_dns_lookups = yes',
    `virtual_mailbox_domains = ${SITE_DOMAIN}`,
    `virtual_mailbox_base = ${join(dir, 'vhosts')}`,
    `virtual_mailbox_maps = hash:${join(dir, 'vmailbox')}`,
    'virtual_minimum_uid = 100',
    'virtual_uid_maps = static:5000',
    'virtual_gid_maps = static:5000',
    `virtual_alias_maps = hash:${join(dir, 'virtual')}`,
    'smtpd_banner = $myhostname ESMTP $mail_name',
    '',
  ].join('\n');
  return { dir, mainCf };
}
