/** A few DOM helpers: element building and number formatting. */

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}

export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
}

/** Bytes as the largest whole unit: 2 GiB, 64 KiB, 1 TiB. */
export function size(n: number | bigint): string {
  const b = BigInt(n);
  for (const [u, s] of [
    ['EiB', 60n],
    ['PiB', 50n],
    ['TiB', 40n],
    ['GiB', 30n],
    ['MiB', 20n],
    ['KiB', 10n],
  ] as const)
    if (b >= 1n << s && b % (1n << s) === 0n) return `${b >> s} ${u}`;
  return `${b} B`;
}

export async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path);
  const body = (await r.json()) as T & { error?: string };
  if (!r.ok) throw new Error(body.error ?? `${path}: HTTP ${r.status}`);
  return body;
}

/** A table of class `grid` (plus `attrs.class`): one header row of `heads`, then `rows`. */
export function grid(attrs: Attrs, heads: string[], rows: HTMLTableRowElement[]): HTMLTableElement {
  const cls = attrs.class ? `grid ${attrs.class}` : 'grid';
  return h('table', { ...attrs, class: cls }, h('tr', {}, ...heads.map((t) => h('th', {}, t))), ...rows);
}

/** A table row of one cell per item. */
export function row(attrs: Attrs, ...cells: Child[]): HTMLTableRowElement {
  return h('tr', attrs, ...cells.map((c) => h('td', {}, c)));
}
