/**
 * local-expand - deliver the targets of an expansion (Postfix local/token.c deliver_token):
 * the list an alias, a ~/.forward or an :include: file gave (parsed by local-token.ts), each
 * to its place: an address again through local-recipient.ts, an :include: file
 * (local-include.ts), a /file or Maildir/ (local-file.ts), a |command (local-command.ts). The
 * result is the worst of the targets' outcomes.
 */
import { deliverCommandTarget } from './local-command.ts';
import { deliverFileTarget } from './local-file.ts';
import { deliverInclude } from './local-include.ts';
import { deliverAddress } from './local-recipient.ts';
import { SENT, worst, type Outcome, type State, type Walk } from './local-state.ts';
import type { AliasTarget } from './local-token.ts';

export async function expandTargets(st: State, targets: AliasTarget[], w: Walk): Promise<Outcome> {
  let out: Outcome = SENT('delivered');
  let any = false;
  for (const t of targets) {
    const o = await deliverTarget(st, t, w);
    out = any ? worst(out, o) : o;
    any = true;
  }
  return out;
}

function deliverTarget(st: State, t: AliasTarget, w: Walk): Promise<Outcome> {
  switch (t.kind) {
    case 'address': return deliverAddress(st, t.address, w, t.noExpand);
    case 'include': return deliverInclude(st, t.path, w);
    case 'file': return deliverFileTarget(st, t.path, w);
    case 'command': return deliverCommandTarget(st, t.command, w);
  }
}
