// Small numeric helpers for the bench: order statistics and the formats every section prints.

export interface Summary {
  median: number;
  min: number;
  max: number;
  count: number;
}

/** Median, min and max of `values` (which it sorts in place). */
export function summarise(values: number[] | Float64Array): Summary {
  const sorted = Float64Array.from(values).sort();
  return { median: quantile(sorted, 0.5), min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN, count: sorted.length };
}

/** The q-quantile (0..1) of already sorted values, nearest rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export function sorted(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** "1.03×": how many times the baseline. */
export function ratio(value: number, baseline: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline === 0) return "n/a";
  return `${(value / baseline).toFixed(2)}×`;
}

/** "met" / "**missed**" for a target `value ≤ limit` (or `≥` with `atLeast`). */
export function verdict(value: number, limit: number, atLeast = false): string {
  if (!Number.isFinite(value)) return "n/a";
  return (atLeast ? value >= limit : value <= limit) ? "met" : "**missed**";
}

export function ms(value: number, digits = 1): string {
  return Number.isFinite(value) ? `${value.toFixed(digits)} ms` : "n/a";
}

export function us(valueMs: number): string {
  return Number.isFinite(valueMs) ? `${Math.round(valueMs * 1000)} µs` : "n/a";
}

/** Megabytes as build.sh and BUILD-NOTES print them: 1 MB = 1,000,000 bytes. */
export const MB = 1_000_000;

export function mb(bytes: number, digits = 1): string {
  return Number.isFinite(bytes) ? `${(bytes / MB).toFixed(digits)} MB` : "n/a";
}

/** A markdown table from a header row and data rows. */
export function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`, ...rows.map((row) => `| ${row.join(" | ")} |`)];
}

/** A shuffled copy (Fisher–Yates): variants run in a new order each round, so drift in the machine's load falls on all alike. */
export function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
