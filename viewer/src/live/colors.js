// Colours and wording of live values: threshold rules for sensors, occupancy for parking,
// status for alerts and inspections. Pure functions, no three.js, no DOM.

/** The palette (CSS colours; three.js reads them too). */
export const COLORS = {
  green: '#2f9e44',
  amber: '#f08c00',
  red: '#e03131',
  grey: '#868e96',
  blue: '#1c7ed6',
  comment: '#f8f9fa',
};

/** A value older than this (ms) is stale: shown grey. */
export const STALE_MS = 60 * 60 * 1000;

/** Kinds of the parking layer (as the server names them). */
export const PARKING_KINDS = new Set(['parking_bay', 'occupancy']);

const KIND_NAMES = {
  no2: 'NO2',
  pm25: 'PM2.5',
  pm10: 'PM10',
  noise_laeq: 'Noise',
  water_level: 'Water level',
  temperature: 'Temperature',
  humidity: 'Humidity',
  parking_bay: 'Parking bay',
  occupancy: 'Occupancy',
};

/** A short display name of a datastream kind ("no2" -> "NO2"). @param {string|null} kind */
export function kindName(kind) {
  if (!kind) return 'Value';
  return KIND_NAMES[kind] || kind.replace(/_/g, ' ');
}

/** A number with sensible precision for a label. @param {number} value */
export function formatValue(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  const size = Math.abs(value);
  if (size >= 100) return String(Math.round(value));
  if (size >= 10) return (Math.round(value * 10) / 10).toString();
  return (Math.round(value * 100) / 100).toString();
}

/**
 * The rule that applies to one datastream: a rule for that sensor and kind wins over one for
 * the kind on every sensor. Null when there is none.
 * @param {Array<{kind: string, sensor: string|null, operator: string, threshold: number}>} rules
 * @param {string} sensorId @param {string} kind
 */
export function ruleFor(rules, sensorId, kind) {
  let general = null;
  for (const rule of rules || []) {
    if (rule.kind !== kind) continue;
    if (rule.sensor === sensorId) return rule;
    if (!rule.sensor && !general) general = rule;
  }
  return general;
}

/**
 * How a value stands against a rule: 'red' at or beyond the threshold, 'amber' within 10 % of
 * it on the safe side, 'green' otherwise; 'grey' without a rule, without a value, or when the
 * value is stale (older than an hour at `now`).
 * @param {number|null|undefined} value
 * @param {{operator: string, threshold: number} | null} rule
 * @param {{time?: string|number|null, now?: number}} [when]
 * @returns {'green'|'amber'|'red'|'grey'}
 */
export function thresholdLevel(value, rule, when = {}) {
  if (isStale(when.time, when.now)) return 'grey';
  if (!rule || typeof value !== 'number' || !Number.isFinite(value)) return 'grey';
  const threshold = Number(rule.threshold);
  const band = Math.abs(threshold) * 0.1;
  if (rule.operator === 'below') {
    if (value <= threshold) return 'red';
    if (value <= threshold + band) return 'amber';
    return 'green';
  }
  if (value >= threshold) return 'red';
  if (value >= threshold - band) return 'amber';
  return 'green';
}

/**
 * Parking occupancy (0..1): green under 70 %, amber under 90 %, red from 90 %; grey when
 * unknown or stale. A bay (`parking_bay`) is 0 (free) or 1 (occupied).
 * @param {number|null|undefined} fraction @param {{time?: string|number|null, now?: number}} [when]
 * @returns {'green'|'amber'|'red'|'grey'}
 */
export function occupancyLevel(fraction, when = {}) {
  if (isStale(when.time, when.now)) return 'grey';
  if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return 'grey';
  if (fraction < 0.7) return 'green';
  if (fraction < 0.9) return 'amber';
  return 'red';
}

/** True when `time` is more than an hour before `now` (default: the clock). */
export function isStale(time, now = Date.now()) {
  if (time === undefined || time === null) return false;
  const t = typeof time === 'number' ? time : Date.parse(time);
  return Number.isFinite(t) && now - t > STALE_MS;
}

/**
 * The 30-minute forecast of a parking item, as a fraction, when the item carries one
 * (`data.forecast_30m`, or `data.forecast` as a number or `{value}`); otherwise null.
 * @param {Record<string, any>} data
 */
export function forecastOf(data) {
  if (!data) return null;
  const raw = data.forecast_30m ?? data.forecast;
  const value = raw && typeof raw === 'object' ? raw.value : raw;
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * The text of a marker's label.
 * @param {{layer: string, kind: string|null, data: Record<string, any>}} item
 * @param {number|null} [value] the value to show (default: the item's own)
 */
export function labelText(item, value = item.data ? item.data.value : null) {
  const data = item.data || {};
  if (item.layer === 'parking') {
    if (item.kind === 'parking_bay') {
      if (typeof value !== 'number') return 'Bay: no value';
      return value >= 0.5 ? 'Bay occupied' : 'Bay free';
    }
    const text = `Occupied ${percent(value)}`;
    const ahead = forecastOf(data);
    return ahead === null ? text : `${text}, in 30 min ${percent(ahead)}`;
  }
  const unit = data.unit && data.unit !== '1' ? ` ${data.unit}` : '';
  return `${kindName(item.kind)} ${formatValue(value)}${unit}`;
}

function percent(fraction) {
  return typeof fraction === 'number' && Number.isFinite(fraction)
    ? `${Math.round(fraction * 100)}%`
    : '–';
}

/** Inspection status -> palette colour name. @param {string} status */
export function inspectionLevel(status) {
  if (status === 'open') return 'red';
  if (status === 'in_progress') return 'blue';
  return 'grey';
}
