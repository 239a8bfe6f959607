/**
 * console-html - the web console's HTML: the page frame, escaping, forms (each with the
 * session's CSRF token), tables, status badges and the inline SVG bar charts. Server-rendered,
 * no script at all; one stylesheet served from /console/style.css (the Content-Security-Policy
 * allows nothing else: no inline script or style, no third-party host).
 *
 * Every value that reaches a page goes through h() (HTML escaping of & < > " '); attribute
 * values are always quoted.
 */

export function h(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));
}

/** The security headers of every console answer (clickjacking, sniffing, caching, referrers). */
export const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on the forms' POSTs.
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export const STYLE = `body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#234;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}header a.on{text-decoration:underline}header form{margin-left:auto}
main{padding:1em;max-width:72em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eee}.green{background:#dfd}.amber{background:#ffe4b0}.red{background:#fcc}.msg{padding:.5em;border:1px solid #9c9;background:#efe}
.err{padding:.5em;border:1px solid #c99;background:#fee}pre{background:#fff;border:1px solid #ccc;padding:.5em;overflow:auto;max-height:40em}
.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;background:#fff;border:1px solid #ccc;padding:.5em}
input,button,select{font:inherit}form.inline{display:inline}.num{text-align:right}`;

export interface PageUser { user: string; admin: boolean; csrf: string }

const NAV: [string, string][] = [
  ['/console/', 'Dashboard'], ['/console/checklist', 'Checklist'], ['/console/users', 'Users'], ['/console/aliases', 'Aliases'],
  ['/console/queue', 'Queue'], ['/console/log', 'Log'], ['/console/me', 'My account'],
];

/** A hidden CSRF field for the forms of a page. */
export function csrfField(u: PageUser): string {
  return `<input type="hidden" name="csrf" value="${h(u.csrf)}">`;
}

/** A POST form with one button (and hidden fields). */
export function button(u: PageUser, action: string, label: string, fields: Record<string, string>): string {
  return `<form class="inline" method="post" action="${h(action)}">${csrfField(u)}${Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${h(k)}" value="${h(v)}">`).join('')}<button type="submit">${h(label)}</button></form>`;
}

export function page(title: string, body: string, u?: PageUser, active = '', flash?: { ok?: string; err?: string }): string {
  const nav = u ? `<header><strong>Postern</strong>${NAV.filter(([p]) => u.admin || p === '/console/me').map(([p, l]) => `<a href="${p}"${p === active ? ' class="on"' : ''}>${l}</a>`).join('')}`
    + `<form method="post" action="/console/logout">${csrfField(u)}<span>${h(u.user)}</span> <button type="submit">Log out</button></form></header>`
    : '<header><strong>Postern</strong></header>';
  const f = (flash?.ok ? `<p class="msg" role="status">${h(flash.ok)}</p>` : '') + (flash?.err ? `<p class="err" role="alert">${h(flash.err)}</p>` : '');
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">`
    + `<title>${h(title)} - Postern</title><link rel="stylesheet" href="/console/style.css"></head>`
    + `<body>${nav}<main><h1>${h(title)}</h1>${f}${body}</main></body></html>\n`;
}

export function table(head: string[], rows: string[][], attrs: string[] = []): string {
  return `<table><tr>${head.map((x) => `<th>${h(x)}</th>`).join('')}</tr>`
    + rows.map((r, i) => `<tr${attrs[i] ? ` ${attrs[i]}` : ''}>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('') + '</table>';
}

/**
 * A bar chart as inline SVG: one bar per bucket, the largest value at full height, the values
 * in <title> (tooltips) and in a data-values attribute for tests and scrapers.
 */
export function barChart(id: string, title: string, values: number[], labels: string[], colour = '#4a7'): string {
  const W = 360, H = 120, pad = 20;
  const max = Math.max(1, ...values);
  const bw = (W - pad) / Math.max(1, values.length);
  const bars = values.map((v, i) => {
    const bh = Math.round((v / max) * (H - pad - 10));
    return `<rect x="${(pad + i * bw + 1).toFixed(1)}" y="${H - pad - bh}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh}" fill="${colour}"><title>${h(labels[i] ?? '')}: ${v}</title></rect>`;
  }).join('');
  const total = values.reduce((a, b) => a + b, 0);
  return `<figure><figcaption>${h(title)}: <strong id="${h(id)}-total">${total}</strong></figcaption>`
    + `<svg id="${h(id)}" data-values="${values.join(',')}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${h(title)}">`
    + `<line x1="${pad}" y1="${H - pad}" x2="${W}" y2="${H - pad}" stroke="#888"/>`
    + `<text x="0" y="12" font-size="10">${max}</text><text x="${pad}" y="${H - 5}" font-size="10">${h(labels[0] ?? '')}</text>`
    + `<text x="${W - 40}" y="${H - 5}" font-size="10">now</text>${bars}</svg></figure>`;
}
