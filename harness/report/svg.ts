/**
 * Inline SVG horizontal bar charts (no scripts, no external assets): groups of labelled bars on a
 * shared linear scale, each bar annotated with its value.
 */

export interface Bar {
  label: string;
  value: number;
  /** CSS colour. */
  color: string;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChart {
  title: string;
  /** Renders a value for the bar annotation and the axis. */
  format: (v: number) => string;
  groups: BarGroup[];
  /** A short accessible description. */
  description: string;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const WIDTH = 960;
const LABEL_W = 200;
const VALUE_W = 110;
const BAR_H = 16;
const GAP = 4;
const GROUP_GAP = 14;
const TITLE_H = 30;

export function renderBarChart(c: BarChart): string {
  const max = Math.max(0, ...c.groups.flatMap((g) => g.bars.map((b) => b.value)));
  const plotW = WIDTH - LABEL_W - VALUE_W;
  const parts: string[] = [];
  let y = TITLE_H;
  for (const g of c.groups) {
    parts.push(`<text class="group" x="0" y="${y + 12}">${escapeXml(g.label)}</text>`);
    y += 18;
    for (const b of g.bars) {
      const w = max > 0 ? Math.max(1, Math.round((b.value / max) * plotW)) : 1;
      parts.push(
        `<g class="bar"><title>${escapeXml(`${g.label} ${b.label}: ${c.format(b.value)}`)}</title>` +
          `<text class="label" x="${LABEL_W - 8}" y="${y + BAR_H - 4}" text-anchor="end">${escapeXml(b.label)}</text>` +
          `<rect x="${LABEL_W}" y="${y}" width="${w}" height="${BAR_H}" fill="${escapeXml(b.color)}" rx="2"/>` +
          `<text class="value" x="${LABEL_W + w + 6}" y="${y + BAR_H - 4}">${escapeXml(c.format(b.value))}</text></g>`,
      );
      y += BAR_H + GAP;
    }
    y += GROUP_GAP;
  }
  const height = Math.max(y, TITLE_H + 20);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" aria-label="${escapeXml(c.description)}">` +
    `<text class="title" x="0" y="18">${escapeXml(c.title)}</text>` +
    (c.groups.length ? parts.join('') : `<text class="label" x="0" y="${TITLE_H + 14}">no data</text>`) +
    `</svg>`
  );
}

/** A fixed palette: the same implementation name gets the same colour in every chart. */
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f'];

export function colorFor(names: string[]): (name: string) => string {
  const m = new Map(names.map((n, i) => [n, PALETTE[i % PALETTE.length]!]));
  return (n) => m.get(n) ?? '#999999';
}
