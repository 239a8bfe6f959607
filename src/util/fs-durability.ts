/**
 * fs-durability - does fsync(2) of a newly created file also make its NAME durable on the file
 * system that holds `dir`? POSIX says no (fsync(2): "an explicit fsync() on a file descriptor
 * for the directory is also needed"), and on ext2 it is not. But on the file systems mail
 * servers run on it is:
 *   - ext4 with a journal, ext3, XFS: the create is logged before the file's later changes,
 *     and the fsync forces the log up to them;
 *   - ext4 WITHOUT a journal: fsync of a file created since its last sync also writes its
 *     parent directory (fs/ext4/fsync.c ext4_sync_parent(), EXT4_STATE_NEWENTRY, 2010);
 *   - btrfs: fsync logs a new inode's directory entries (btrfs_log_inode_parent()).
 * Postfix relies on this for every queue file and never fsyncs a directory. Postern does the
 * directory fsync itself (grouped, util/dir-sync.ts) everywhere else, and skips it only where
 * this says it is already done. Renames are not covered: a name moved into a directory (Maildir
 * tmp/ → new/, a queue file into hold/) always gets its directory fsync'd.
 *
 * The file system is the one /proc/self/mountinfo lists for the longest mount point containing
 * the directory (after realpath); unknown (no /proc, another OS) means "no".
 */
import { readFileSync, realpathSync } from 'node:fs';

const NAME_DURABLE_WITH_FILE_FSYNC = new Set(['ext4', 'ext3', 'xfs', 'btrfs']);

/** The file system type of the mount holding `path` ('' when unknown). */
export function fileSystemType(path: string): string {
  let real: string;
  let info: string;
  try {
    real = realpathSync(path);
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch { return ''; }
  let best = '';
  let type = '';
  for (const line of info.split('\n')) {
    // id parent major:minor root MOUNTPOINT options [optional...] - FSTYPE source superoptions
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (f.length < 5 || dash < 0) continue;
    const mount = f[4]!.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = mount === '/' || real === mount || real.startsWith(mount + '/');
    if (inside && mount.length >= best.length) { best = mount; type = f[dash + 1] ?? ''; }
  }
  return type;
}

/** fsync of a file created in `dir` also makes its directory entry durable (see above). */
export function newNamesDurableWithFileFsync(dir: string): boolean {
  return NAME_DURABLE_WITH_FILE_FSYNC.has(fileSystemType(dir));
}
