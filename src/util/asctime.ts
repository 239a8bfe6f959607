/**
 * asctime - C asctime() without its newline: "Fri Nov  7 09:05:03 2026" (the day padded with a
 * space, 24 characters). The one formatter for every place Postfix prints that form: the mbox
 * From_ line (Postfix global/mail_copy.c: asctime(localtime())), postqueue -p's arrival time and
 * postcat's time records.
 *
 * DESCRIPTION
 *   asctime(d) formats d in local time, as asctime(localtime()). asctime(d, true) formats it in
 *   UTC, as asctime(gmtime()): the From_ lines that lib-storage's mbox writer and pipe(8)'s F
 *   flag produce have always been in UTC, and keep that form.
 */
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "Www Mmm dd hh:mm:ss yyyy", local time (or UTC when `utc`). */
export function asctime(d: Date, utc = false): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const day = utc ? d.getUTCDay() : d.getDay();
  const month = utc ? d.getUTCMonth() : d.getMonth();
  const date = utc ? d.getUTCDate() : d.getDate();
  const h = utc ? d.getUTCHours() : d.getHours();
  const m = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  const y = utc ? d.getUTCFullYear() : d.getFullYear();
  return `${DAYS[day]} ${MONTHS[month]} ${String(date).padStart(2, ' ')} ${p2(h)}:${p2(m)}:${p2(s)} ${y}`;
}
