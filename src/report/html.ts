// Small HTML building blocks for the report: escaping, number cells that carry their exact source value, tables, notes.

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A fraction shown as a percentage with one decimal. */
export function pct(v: number): string {
  return (v * 100).toFixed(1);
}

export function fixed(v: number, digits = 3): string {
  return v.toFixed(digits);
}

/**
 * A numeric table cell. data-value holds the exact number from the results file so the report can be checked (and
 * re-plotted) against the source; the text is its display form. `best` bolds it.
 */
export function numCell(v: number | undefined, format: (v: number) => string, opts: { best?: boolean; total?: boolean; title?: string } = {}): string {
  if (v === undefined) return '<td class="na">–</td>';
  const title = opts.title ? ` title="${esc(opts.title)}"` : '';
  return `<td class="num${opts.best ? ' best' : ''}${opts.total ? ' total' : ''}" data-value="${v}"${title}>${format(v)}</td>`;
}

export function deltaCell(v: number | undefined, base: number | undefined, format: (v: number) => string): string {
  if (v === undefined || base === undefined) return '<td class="na">–</td>';
  const d = v - base;
  const cls = d > 0 ? 'up' : d < 0 ? 'down' : '';
  return `<td class="num delta ${cls}" data-value="${d}">${d > 0 ? '+' : ''}${format(d)}</td>`;
}

export function table(id: string, head: string[], rows: string[][], caption?: string): string {
  return `<table id="${esc(id)}">${caption ? `<caption>${esc(caption)}</caption>` : ''}`
    + `<thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead>`
    + `<tbody>${rows.map((r) => `<tr>${r.join('')}</tr>`).join('')}</tbody></table>`;
}

export const td = (s: string | number) => `<td>${esc(String(s))}</td>`;

export function note(text: string): string {
  return `<p class="note">${esc(text)}</p>`;
}

export function section(id: string, title: string, body: string): string {
  return `<section id="${esc(id)}"><h2>${esc(title)}</h2>${body}</section>`;
}

export function figure(slug: string, inlineSvg: string, caption?: string): string {
  return `<figure class="plot" data-plot="${esc(slug)}">${inlineSvg}${caption ? `<figcaption>${esc(caption)}</figcaption>` : ''}</figure>`;
}

export const CSS = `
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1400px;padding:16px 28px;color:#222;background:#fafafa}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;border-bottom:2px solid #4e79a7;padding-bottom:4px;margin-top:36px}
h3{font-size:15px;margin:18px 0 6px}
nav a{margin-right:14px;color:#4e79a7;text-decoration:none;font-size:13px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12.5px;background:#fff}
caption{text-align:left;font-weight:bold;padding:4px 0}
th,td{border:1px solid #d8d8d8;padding:3px 8px}th{background:#eef2f7;text-align:left}
td.total{font-weight:bold}td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:bold;background:#eaf5ea}
td.delta.up{color:#2d7a2d}td.delta.down{color:#b33}td.na{color:#aaa;text-align:center}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;background:#fff;border:1px solid #e2e2e2;padding:4px}figure svg{display:block;max-width:100%;height:auto}
figcaption{font-size:11.5px;color:#555;padding:4px 2px;max-width:640px}
.plot figcaption{width:0;min-width:calc(100% - 4px);max-width:none}
.samples figure img{width:360px;max-width:100%;display:block}
.samples figcaption{max-width:360px}
.note{background:#fff6e0;border-left:4px solid #f2b134;padding:6px 10px;font-size:13px}
details pre{white-space:pre-wrap;font-size:11.5px;background:#f1f1f1;padding:8px}
.meta td{font-size:12px}
.runline{color:#555;font-size:13px;margin:0 0 8px}
details>summary{cursor:pointer;color:#4e79a7;margin:10px 0}
#prompts pre{white-space:pre-wrap;font-size:11px;margin:0;max-width:900px}
`;
