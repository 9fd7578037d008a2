// A small line chart on a <canvas>: a sensor's values over a period, with its threshold.

/**
 * Draw `points` (time in ms, value) between `from` and `to` on `canvas` (its CSS size is kept;
 * the backing store follows the device pixel ratio). A dashed red line marks `threshold`.
 * @param {HTMLCanvasElement} canvas
 * @param {{points: Array<{t: number, v: number}>, from: number, to: number,
 *   threshold?: number|null, unit?: string, cursor?: number|null}} chart
 */
export function drawChart(canvas, { points, from, to, threshold = null, unit = '', cursor = null }) {
  const cssWidth = canvas.clientWidth || Number(canvas.getAttribute('width')) || 320;
  const cssHeight = canvas.clientHeight || Number(canvas.getAttribute('height')) || 160;
  const ratio = globalThis.devicePixelRatio || 1;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssWidth, cssHeight);
  const left = 44, right = 8, top = 16, bottom = 20; // prettier-ignore
  const w = cssWidth - left - right;
  const h = cssHeight - top - bottom;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#f1f3f5';
  g.fillRect(left, top, w, h);

  const values = points.map((p) => p.v);
  if (typeof threshold === 'number') values.push(threshold);
  let low = values.length ? lowest(values) : 0;
  let high = values.length ? highest(values) : 1;
  if (high - low < 1e-9) {
    low -= 1;
    high += 1;
  }
  const pad = (high - low) * 0.08;
  low -= pad;
  high += pad;
  const x = (t) => left + ((t - from) / (to - from)) * w;
  const y = (v) => top + (1 - (v - low) / (high - low)) * h;

  // Axes: value range and unit on the left, hours below.
  g.fillStyle = '#495057';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const v of ticks(low, high, 4)) {
    g.fillText(shortNumber(v), left - 4, y(v));
    g.strokeStyle = '#dee2e6';
    g.beginPath();
    g.moveTo(left, y(v));
    g.lineTo(left + w, y(v));
    g.stroke();
  }
  g.textAlign = 'left';
  g.textBaseline = 'top';
  g.fillText(unit && unit !== '1' ? unit : '', 2, 2);
  g.textBaseline = 'bottom';
  const hours = (to - from) / 3_600_000;
  const step = hours > 12 ? 6 : hours > 4 ? 2 : 1;
  g.textAlign = 'center';
  for (let k = 0; k <= hours; k += step) {
    const t = to - k * 3_600_000;
    g.fillText(k === 0 ? 'now' : `-${k} h`, Math.min(Math.max(x(t), left + 10), left + w - 10), cssHeight - 2);
  }

  if (typeof threshold === 'number') {
    g.strokeStyle = '#e03131';
    g.setLineDash([5, 4]);
    g.lineWidth = 1.5;
    g.beginPath();
    g.moveTo(left, y(threshold));
    g.lineTo(left + w, y(threshold));
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = '#e03131';
    g.textAlign = 'right';
    g.textBaseline = 'bottom';
    g.fillText(`limit ${shortNumber(threshold)}`, left + w - 2, y(threshold) - 2);
  }

  const sorted = [...points].sort((a, b) => a.t - b.t);
  g.strokeStyle = '#1c7ed6';
  g.lineWidth = 2;
  g.beginPath();
  sorted.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
  g.stroke();
  if (sorted.length === 1) {
    g.fillStyle = '#1c7ed6';
    g.beginPath();
    g.arc(x(sorted[0].t), y(sorted[0].v), 3, 0, 2 * Math.PI);
    g.fill();
  }
  if (!sorted.length) {
    g.fillStyle = '#868e96';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText('No values in this period', left + w / 2, top + h / 2);
  }
  if (typeof cursor === 'number' && cursor >= from && cursor <= to) {
    g.strokeStyle = '#212529';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(x(cursor), top);
    g.lineTo(x(cursor), top + h);
    g.stroke();
  }
}

function ticks(low, high, count) {
  const span = high - low;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high; v += step) out.push(v);
  return out;
}

function shortNumber(v) {
  const size = Math.abs(v);
  if (size >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (size >= 10 || v === 0) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}

/**
 * A sentence that says what the chart shows (for screen readers).
 * @param {Array<{t: number, v: number}>} points @param {string} unit
 */
export function describeChart(points, unit) {
  if (!points.length) return 'No values in the last 24 hours.';
  const values = points.map((p) => p.v);
  const newest = points.reduce((a, b) => (b.t > a.t ? b : a));
  const u = unit && unit !== '1' ? ` ${unit}` : '';
  return `${points.length} values in the last 24 hours: lowest ${shortNumber(lowest(values))}${u}, highest ${shortNumber(highest(values))}${u}, latest ${shortNumber(newest.v)}${u}.`;
}

/** The smallest of many numbers (no argument spread, which fails for long arrays). */
function lowest(values) {
  let low = Infinity;
  for (const v of values) if (v < low) low = v;
  return low;
}

function highest(values) {
  let high = -Infinity;
  for (const v of values) if (v > high) high = v;
  return high;
}
