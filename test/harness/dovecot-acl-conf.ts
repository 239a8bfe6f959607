/**
 * dovecot-acl-conf - the dovecot.conf lines of a site with shared folders, for differential tests
 * that run real Dovecot 2.3 and Postern on the same configuration: the acl and imap_acl plugins
 * (`acl = vfile`, dovecot-acl files per mailbox), a shared namespace `shared/%%u/` and, when
 * given, a public namespace `Public/`, with `acl_shared_dict` so LIST finds the users who share.
 *
 *   aclConf({ dict: join(dir, 'dovecot.db'), publicDir: join(dir, 'public-dovecot') })
 *   aclConf({ dict, sharedLocation: 'maildir:%%h:INDEXPVT=~/shared/%%u' })   // private \Seen
 */
export interface AclConfOptions {
  /** The acl_shared_dict file (a path; each server needs its own). */
  dict: string;
  /** The public namespace's Maildir; none when undefined. */
  publicDir?: string;
  /** The shared namespace's location (default: the owner's Maildir, `maildir:%%h`). */
  sharedLocation?: string;
}

export function aclConf(o: AclConfOptions): string {
  const pub = o.publicDir === undefined ? '' : `namespace public {
  type = public
  separator = /
  prefix = Public/
  location = maildir:${o.publicDir}
  subscriptions = no
  list = children
}
`;
  return `
mail_plugins = $mail_plugins acl
protocol imap {
  mail_plugins = $mail_plugins imap_acl
}
namespace shared {
  type = shared
  separator = /
  prefix = shared/%%u/
  location = ${o.sharedLocation ?? 'maildir:%%h'}
  subscriptions = no
  list = children
}
${pub}plugin {
  acl = vfile
  acl_shared_dict = file:${o.dict}
}
`;
}
