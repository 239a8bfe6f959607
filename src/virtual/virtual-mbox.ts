/**
 * virtual-mbox - append one message to an mbox file (virtual(8) when the virtual_mailbox_maps
 * result does not end in "/"; Postfix mbox format): a `From sender date` envelope line, the
 * headers and body with `>From ` quoting of body lines starting with "From ", a blank line at
 * the end. Locking: a dotlock `FILE.lock` (created with O_EXCL, stale after 300 s like Postfix's
 * stale_lock_time), since Node has no fcntl(2) record locks. On a write error the file is
 * truncated back to its old size, so a reader never sees half a message.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { dirname } from 'node:path';
import { writeFully } from '../util/fs-write.ts';

const STALE_LOCK_MS = 300_000;

export interface MboxFailure { dsn: string; text: string }

function asctime(d: Date): string {
  // "Fri Nov 27 19:20:00 2026", ctime(3) as Postfix writes it.
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

/** Quote body lines that start with "From " (and already-quoted ">From ") as mboxrd does. */
export function mboxQuote(content: Buffer): Buffer {
  const s = content.toString('latin1').replace(/^(>*From )/gm, '>$1');
  return Buffer.from(s, 'latin1');
}

async function lock(path: string): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  for (let i = 0; i < 50; i++) {
    try {
      const fh = await fsp.open(lockPath, C.O_CREAT | C.O_EXCL | C.O_WRONLY, 0o600);
      await fh.close();
      return () => fsp.unlink(lockPath).catch(() => {});
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const st = await fsp.stat(lockPath).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) { await fsp.unlink(lockPath).catch(() => {}); continue; }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`unable to lock ${path}: dotlock ${lockPath} held too long`);
}

export async function deliverMbox(path: string, sender: string, headers: Buffer, content: Buffer, limit: number): Promise<MboxFailure | undefined> {
  await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const unlock = await lock(path);
  try {
    const fh = await fsp.open(path, C.O_CREAT | C.O_WRONLY | C.O_APPEND | C.O_NOFOLLOW, 0o600);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return { dsn: '5.2.0', text: `mailbox ${path} is not a regular file` };
      let body = mboxQuote(content);
      if (body.length && body[body.length - 1] !== 0x0a) body = Buffer.concat([body, Buffer.from('\n')]);
      const msg = Buffer.concat([Buffer.from(`From ${sender || 'MAILER-DAEMON'}  ${asctime(new Date())}\n`), headers, body, Buffer.from('\n')]);
      if (limit > 0 && st.size + msg.length > limit) return { dsn: '5.2.2', text: `cannot update mailbox ${path}: file too large` };
      try {
        await writeFully(fh, msg);
        await fh.sync();
      } catch (e) {
        await fh.truncate(st.size).catch(() => {});
        return { dsn: '4.2.0', text: `cannot update mailbox ${path}: ${(e as Error).message}` };
      }
      return undefined;
    } finally {
      await fh.close();
    }
  } finally {
    await unlock();
  }
}
