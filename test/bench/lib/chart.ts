// The bench chart: horizontal bar panels written as plain SVG text (no dependency), one panel per figure a
// section chooses to plot.

export interface Bar {
  label: string;
  value: number;
  /** ours: micro-lambda; prototype: a measured change not shipped; baseline: the same-machine reference (node bundle, the floor); peer: aws-lambda-ric. */
  kind: "ours" | "prototype" | "baseline" | "peer";
}

export interface ChartPanel {
  title: string;
  /** Printed after each value ("ms", "/s", "MB"). */
  unit: string;
  bars: Bar[];
}

const colours = { ours: "#2563eb", prototype: "#93c5fd", baseline: "#9ca3af", peer: "#f59e0b" } as const;
const legend = { ours: "micro-lambda", prototype: "prototype (not shipped)", baseline: "baseline (same Node binary)", peer: "aws-lambda-ric" } as const;

const width = 760;
const labelWidth = 230;
const valueWidth = 90;
const barHeight = 18;
const barGap = 6;
const titleHeight = 28;
const panelGap = 18;
const margin = 16;

/** An SVG document holding every panel, stacked, with a legend and a caption line at the bottom. */
export function renderChart(panels: ChartPanel[], caption: string): string {
  const barArea = width - 2 * margin - labelWidth - valueWidth;
  const parts: string[] = [];
  let y = margin;

  // Legend.
  let x = margin;
  const used = new Set(panels.flatMap((panel) => panel.bars.map((bar) => bar.kind)));
  for (const kind of (["ours", "prototype", "baseline", "peer"] as const).filter((kind) => used.has(kind))) {
    parts.push(`<rect x="${x}" y="${y}" width="12" height="12" rx="2" fill="${colours[kind]}"/>`);
    parts.push(`<text x="${x + 18}" y="${y + 11}" class="small">${escape(legend[kind])}</text>`);
    x += 30 + legend[kind].length * 6.5;
  }
  y += 12 + panelGap;

  for (const panel of panels) {
    const bars = panel.bars.filter((bar) => Number.isFinite(bar.value));
    parts.push(`<text x="${margin}" y="${y + 16}" class="title">${escape(panel.title)}</text>`);
    y += titleHeight;
    const max = Math.max(...bars.map((bar) => bar.value), 0) || 1;
    for (const bar of bars) {
      const length = Math.max(1, (bar.value / max) * barArea);
      const top = y;
      parts.push(`<text x="${margin + labelWidth - 8}" y="${top + 13}" text-anchor="end">${escape(bar.label)}</text>`);
      parts.push(`<rect x="${margin + labelWidth}" y="${top}" width="${length.toFixed(1)}" height="${barHeight}" rx="2" fill="${colours[bar.kind]}"/>`);
      parts.push(`<text x="${(margin + labelWidth + length + 6).toFixed(1)}" y="${top + 13}">${escape(format(bar.value))} ${escape(panel.unit)}</text>`);
      y += barHeight + barGap;
    }
    y += panelGap;
  }
  parts.push(`<text x="${margin}" y="${y + 4}" class="small">${escape(caption)}</text>`);
  y += 4 + margin;

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" role="img" aria-label="micro-lambda benchmark">`,
    "<style>text{font:13px system-ui,-apple-system,'Segoe UI',sans-serif;fill:#1f2937}.title{font-weight:600;font-size:14px}.small{font-size:11px;fill:#4b5563}</style>",
    `<rect width="${width}" height="${y}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

function format(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString("en-US");
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
