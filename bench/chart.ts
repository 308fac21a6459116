import type { BenchResult, ThroughputComparison } from './phases';

interface Series {
  name: string;
  colour: string;
  dashed?: boolean;
  values: number[];
}

interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  xs: number[];
  series: Series[];
}

const SERVICE = '#2563eb';
const BARE = '#9ca3af';
const WIDTH = 380;
const HEIGHT = 250;
const MARGIN = { top: 34, right: 16, bottom: 44, left: 56 };

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const label = (v: number) => (Math.abs(v) >= 100 ? String(Math.round(v)) : String(v));

/** Round-number ticks from 0 to at least `max`. */
function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? rough;
  const out: number[] = [];
  for (let value = 0; value < max + step * 0.999; value += step) out.push(Number(value.toPrecision(6)));
  return out;
}

function panel(p: Panel, offsetX: number, offsetY: number): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const finite = p.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const yTicks = ticks(Math.max(0, ...finite) * 1.08);
  const yMax = yTicks.at(-1)!;
  // Categorical x positions: the measured points, evenly spaced (concurrency is roughly geometric).
  const inset = 28;
  const x = (i: number) =>
    MARGIN.left + (p.xs.length === 1 ? plotW / 2 : inset + (i * (plotW - 2 * inset)) / (p.xs.length - 1));
  const y = (v: number) => MARGIN.top + plotH - (v / yMax) * plotH;
  const parts: string[] = [`<g transform="translate(${offsetX},${offsetY})">`];
  parts.push(
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">${escape(p.title)}</text>`,
  );
  for (const tick of yTicks) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e7eb"/>`,
    );
    parts.push(
      `<text x="${MARGIN.left - 6}" y="${y(tick) + 4}" text-anchor="end" font-size="10" fill="#374151">${label(tick)}</text>`,
    );
  }
  p.xs.forEach((value, i) => {
    parts.push(
      `<text x="${x(i)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="10" fill="#374151">${value}</text>`,
    );
  });
  parts.push(
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="#6b7280"/>`,
  );
  parts.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle" font-size="11" fill="#374151">${escape(p.xLabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(14,${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="11" fill="#374151">${escape(p.yLabel)}</text>`,
  );
  p.series.forEach((s, seriesIndex) => {
    const points = s.values
      .map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : undefined))
      .filter(Boolean);
    parts.push(
      `<polyline fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''} points="${points.join(' ')}"/>`,
    );
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      parts.push(
        `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${s.colour}"><title>${escape(`${s.name}: ${v}`)}</title></circle>`,
      );
      // The higher point at each x is labelled above, the lower below, so close values stay readable.
      const others = p.series.filter((_, index) => index !== seriesIndex).map((other) => other.values[i] ?? Number.NaN);
      const highest = others.every((other) => !(other > v) && !(other === v && seriesIndex > 0));
      const labelY = highest ? y(v) - 7 : y(v) + 15;
      parts.push(
        `<text x="${x(i).toFixed(1)}" y="${labelY.toFixed(1)}" text-anchor="middle" font-size="9" fill="${s.colour}">${label(v)}</text>`,
      );
    });
  });
  parts.push('</g>');
  return parts.join('\n');
}

function panelsFor(points: ThroughputComparison[], axis: 'concurrency' | 'outputs', fixed: string): Panel[] {
  const xs = points.map((point) => point[axis]);
  const xLabel = axis === 'concurrency' ? `concurrent clients (${fixed})` : `outputs per job (${fixed})`;
  return [
    {
      title: `Throughput vs ${axis}`,
      xLabel,
      yLabel: 'jobs/s',
      xs,
      series: [
        { name: 'service', colour: SERVICE, values: points.map((point) => point.service.jobsPerS) },
        { name: 'bare workflow', colour: BARE, dashed: true, values: points.map((point) => point.bare.jobsPerS) },
      ],
    },
    {
      title: `End-to-end p99 vs ${axis}`,
      xLabel,
      yLabel: 'p99 latency (ms)',
      xs,
      series: [
        { name: 'service', colour: SERVICE, values: points.map((point) => point.service.latency.p99Ms) },
        { name: 'bare workflow', colour: BARE, dashed: true, values: points.map((point) => point.bare.latency.p99Ms) },
      ],
    },
  ];
}

/** Throughput and p99 against concurrency (and against outputs per job), service beside the bare workflow. */
export function renderChart(result: BenchResult): string {
  const headline = result.throughput ? [result.throughput] : [];
  const byConcurrency = result.scaling?.byConcurrency.length ? result.scaling.byConcurrency : headline;
  const byOutputs = result.scaling?.byOutputs.length ? result.scaling.byOutputs : headline;
  const panels = [
    ...panelsFor(byConcurrency, 'concurrency', `${result.settings.outputs} outputs`),
    ...panelsFor(byOutputs, 'outputs', `${result.settings.concurrency} clients`),
  ];
  const columns = 2;
  const rows = Math.ceil(panels.length / columns);
  const legendH = 46;
  const width = WIDTH * columns;
  const height = HEIGHT * rows + legendH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...panels.map((p, i) => panel(p, (i % columns) * WIDTH, Math.floor(i / columns) * HEIGHT)),
  ];
  const legendY = HEIGHT * rows + 16;
  parts.push(`<line x1="60" x2="90" y1="${legendY}" y2="${legendY}" stroke="${SERVICE}" stroke-width="2"/>`);
  parts.push(`<text x="96" y="${legendY + 4}" font-size="11">service (HTTP submit + 100 ms status polls)</text>`);
  parts.push(
    `<line x1="380" x2="410" y1="${legendY}" y2="${legendY}" stroke="${BARE}" stroke-width="2" stroke-dasharray="5 4"/>`,
  );
  parts.push(`<text x="416" y="${legendY + 4}" font-size="11">bare workflow, same shape, no-op activities</text>`);
  const host = `${result.host.cpus} CPU ${result.host.cpuModel}, Node ${result.host.node}`;
  parts.push(
    `<text x="${width / 2}" y="${legendY + 22}" text-anchor="middle" font-size="10" fill="#6b7280">${escape(`npm run bench, ${result.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${host}`)}</text>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
