/**
 * postdkim - `postern dkim`: the DKIM keys Postern signs with (opendkim-genkey and the
 * SigningTable/KeyTable housekeeping of an OpenDKIM site, in one command).
 *
 * SYNOPSIS
 *   postern [-c CONFIG_DIR] dkim keygen DOMAIN [--selector S] [--type rsa|ed25519|both]
 *   postern [-c CONFIG_DIR] dkim list [DOMAIN]
 *   postern [-c CONFIG_DIR] dkim rotate DOMAIN [--selector S]
 *   postern [-c CONFIG_DIR] dkim remove DOMAIN SELECTOR
 *
 * DESCRIPTION
 *   Keys live in postern_dkim_key_directory (default CONFIG_DIR/dkim), one file per key,
 *   DOMAIN.SELECTOR.ALGORITHM.key, PKCS#8 PEM, mode 0600 (lib-authres/dkim-keys.ts). A domain
 *   with a key there is signed by cleanup from the next message on, with no reload.
 *
 *   keygen   makes the keys of DOMAIN: RSA 2048 under selector S (default `postern`) and
 *            Ed25519 under S-ed25519 (--type both, the default), or one of them under S; then
 *            prints the TXT records to publish. Refuses to replace a key.
 *   list     every key of the directory: domain, selector, algorithm, state (signing; retired:
 *            published only; UNUSABLE: why) and file. Entries of postern_dkim_signing_maps are
 *            the administrator's own table (`postern map -s` prints it).
 *   rotate   new keys (the algorithms DOMAIN signs with now; S default postern-YYYYMMDD) sign from
 *            now on; the old ones are renamed .retired: no longer used, still printed by
 *            `postern dns DOMAIN` because signed mail is still on its way. Publish the new
 *            records before the next message is sent (or rotate with the new selector
 *            published first, see docs/dkim.md).
 *   remove   deletes the retired keys of SELECTOR, once its DNS record is gone.
 *
 * EXIT STATUS
 *   0 done; 1 failed (the message names the file); 64 usage error.
 */
import { MainConfig } from '../global/mail-conf.ts';
import type { CliContext } from './cli-context.ts';
import { checkDomainName } from './postdns-plan.ts';
import { checkSelector, dkimRecordValue, keygen, listKeys, readSigningKey, removeRetired, rotate, type DkimAlgorithm, type DkimKeyFile } from '../lib-authres/dkim-keys.ts';
import { STDIO, type CliOutput } from './postdns.ts';

const EX_USAGE = 64;
const USAGE = `usage: postern [-c CONFIG_DIR] dkim keygen DOMAIN [--selector S] [--type rsa|ed25519|both]
       postern [-c CONFIG_DIR] dkim list [DOMAIN]
       postern [-c CONFIG_DIR] dkim rotate DOMAIN [--selector S]
       postern [-c CONFIG_DIR] dkim remove DOMAIN SELECTOR`;

class UsageError extends Error {}

interface DkimArgs { verb: string; pos: string[]; selector?: string; type?: DkimAlgorithm | 'both' }

function parseArgs(args: string[]): DkimArgs {
  const [verb, ...rest] = args;
  if (!verb || !['keygen', 'list', 'rotate', 'remove'].includes(verb)) throw new UsageError(verb ? `unknown subcommand ${JSON.stringify(verb)}` : 'give a subcommand');
  const o: DkimArgs = { verb, pos: [] };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const val = () => { const v = rest[++i]; if (v === undefined) throw new UsageError(`option ${a} needs a value`); return v; };
    if (a === '--selector' || a === '-s') o.selector = val().toLowerCase();
    else if (a === '--type' || a === '-t') {
      const t = val().toLowerCase();
      if (t !== 'rsa' && t !== 'ed25519' && t !== 'both') throw new UsageError(`--type ${JSON.stringify(t)}: use rsa, ed25519 or both`);
      o.type = t;
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
    else o.pos.push(a);
  }
  const want = { keygen: [1, 1], list: [0, 1], rotate: [1, 1], remove: [2, 2] }[verb as 'keygen']!;
  if (o.pos.length < want[0]! || o.pos.length > want[1]!) throw new UsageError(`wrong number of arguments for ${verb}`);
  if (o.pos[0] !== undefined) {
    o.pos[0] = o.pos[0].replace(/\.$/, '').toLowerCase();
    const bad = checkDomainName(o.pos[0]);
    if (bad) throw new UsageError(bad);
  }
  for (const s of [o.selector, verb === 'remove' ? o.pos[1] : undefined]) {
    const bad = s !== undefined ? checkSelector(s) : undefined;
    if (bad) throw new UsageError(bad);
  }
  if (o.type && verb !== 'keygen') throw new UsageError('--type is for keygen');
  return o;
}

/** The zone lines of keys (the same form `postern dns` prints). */
function records(keys: DkimKeyFile[]): string {
  return keys.map((k) => {
    const v = dkimRecordValue(k, readSigningKey(k.file, k.algorithm));
    const strings: string[] = [];
    for (let i = 0; i < v.length; i += 255) strings.push(`"${v.slice(i, i + 255)}"`);
    return `${(`${k.selector}._domainkey.${k.domain}.`).padEnd(32)} 3600 IN TXT  ${strings.join(' ')}\n`;
  }).join('');
}

export async function main(args: string[], ctx: CliContext, io: CliOutput = STDIO): Promise<number> {
  let a: DkimArgs;
  try { a = parseArgs(args); } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`postern dkim: ${e.message}\n${USAGE}\n`);
    return EX_USAGE;
  }
  try {
    const cf = MainConfig.load(ctx.configDir);
    const dir = cf.get('postern_dkim_key_directory');
    const domain = a.pos[0]!;
    switch (a.verb) {
      case 'keygen': {
        const made = keygen(dir, domain, { selector: a.selector, type: a.type });
        for (const k of made) io.err(`postern dkim: generated the ${k.algorithm} key ${k.file} (selector ${k.selector})\n`);
        io.out(`; publish in the ${domain} zone; Postern signs ${domain}'s mail with these keys from now on\n${records(made)}`);
        if (!cf.bool('postern_dkim_signing')) io.err(`postern dkim: warning: postern_dkim_signing = no in ${cf.file}: nothing is signed\n`);
        return 0;
      }
      case 'list': {
        const keys = listKeys(dir, a.pos[0]);
        if (keys.length === 0) { io.err(`postern dkim: no keys in ${dir}\n`); return 0; }
        for (const k of keys) {
          let state = k.active ? 'signing' : 'retired';
          try { readSigningKey(k.file, k.algorithm); } catch (e) { state = `UNUSABLE: ${(e as Error).message}`; }
          io.out(`${k.domain} ${k.selector} ${k.algorithm} ${state} ${k.file}\n`);
        }
        return 0;
      }
      case 'rotate': {
        const r = rotate(dir, domain, new Date(), a.selector);
        for (const k of r.created) io.err(`postern dkim: generated the ${k.algorithm} key ${k.file} (selector ${k.selector}); it signs from now on\n`);
        for (const k of r.retired) io.err(`postern dkim: retired ${k.file} (selector ${k.selector}): keep its record published for a few days, then: postern dkim remove ${domain} ${k.selector}\n`);
        io.out(`; publish in the ${domain} zone now (the old records stay until removed)\n${records(r.created)}`);
        return 0;
      }
      case 'remove': {
        for (const k of removeRetired(dir, domain, a.pos[1]!)) io.err(`postern dkim: removed ${k.file}; its TXT record ${k.selector}._domainkey.${k.domain} may go too\n`);
        return 0;
      }
    }
    return EX_USAGE;
  } catch (e) {
    io.err(`postern dkim: ${(e as Error).message}\n`);
    return 1;
  }
}
