/**
 * uv-threadpool - size libuv's thread pool for a mail server. Import it FIRST (before any module
 * that touches the file system) in every process entry point: `import '../util/uv-threadpool.ts';`
 *
 * libuv runs every file-system call (open, write, fsync, rename, ...) on a thread pool of 4
 * threads by default, shared by the whole process: with 20 SMTP sessions committing queue files
 * and deliveries fsyncing Maildir files, the fifth fsync waits for one of the first four, where
 * Postfix has one process (and so one blocked thread) per session. The pool is created on its
 * first use, so setting the variable while modules load is early enough; an administrator's own
 * UV_THREADPOOL_SIZE wins, and child processes inherit it. Threads blocked in fsync cost no CPU.
 */
export const UV_THREADPOOL_DEFAULT = 64;

process.env['UV_THREADPOOL_SIZE'] ??= String(UV_THREADPOOL_DEFAULT);
