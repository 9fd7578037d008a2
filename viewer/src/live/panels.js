// The panels of live things: a sensor's last 24 hours as a chart, an alert with its
// acknowledgement, an inspection's or a comment's details. Shown through the core's
// `ui.showPanel(title, body)` (a page without one gets a small panel of its own).
import { COLORS, formatValue, kindName, ruleFor, thresholdLevel } from './colors.js';
import { drawChart, describeChart } from './chart.js';
import { DAY_MS } from './history.js';

/** Create an element with attributes and children (text children are text, never markup). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A definition list of label/value rows (empty values left out). */
export function facts(rows) {
  const list = el('dl', { class: 'live-facts' });
  for (const [label, value] of rows) {
    if (value === undefined || value === null || value === '') continue;
    list.append(el('dt', { text: label }), el('dd', { text: String(value) }));
  }
  return list;
}

/** A readable local time. @param {string|number|null} time */
export function when(time) {
  if (time === null || time === undefined) return '';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return String(time);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

let fallback = null;

/**
 * Show a panel through the core's ui, or a fallback of our own.
 * @param {any} ui the core's ui (`showPanel(title, body)`, `hidePanel()`)
 * @param {string} title @param {HTMLElement} body
 */
export function showPanel(ui, title, body) {
  if (ui && typeof ui.showPanel === 'function') {
    ui.showPanel(title, body);
    return;
  }
  if (!fallback) {
    fallback = el('section', { class: 'live-panel', role: 'dialog', 'aria-live': 'polite' });
    Object.assign(fallback.style, {
      position: 'fixed', right: '12px', top: '12px', width: 'min(360px, calc(100vw - 24px))',
      maxHeight: 'calc(100vh - 24px)', overflow: 'auto', background: '#fff', color: '#212529',
      borderRadius: '8px', boxShadow: '0 4px 18px rgba(0,0,0,.25)', padding: '12px 14px',
      font: '14px system-ui, sans-serif', zIndex: '20',
    }); // prettier-ignore
    document.body.append(fallback);
  }
  const close = el('button', { type: 'button', 'aria-label': 'Close', text: '×', onclick: () => hidePanel(ui) });
  Object.assign(close.style, { float: 'right', fontSize: '18px', border: 'none', background: 'none', cursor: 'pointer' });
  const heading = el('h2', { text: title });
  Object.assign(heading.style, { fontSize: '16px', margin: '0 0 8px' });
  fallback.replaceChildren(close, heading, body);
  fallback.hidden = false;
}

/** @param {any} ui */
export function hidePanel(ui) {
  if (ui && typeof ui.hidePanel === 'function') ui.hidePanel();
  if (fallback) fallback.hidden = true;
}

/**
 * A sensor's panel: its latest value and the last 24 hours as a chart with the threshold.
 * @param {{api: any, ui: any, history: import('./history.js').History, rules: () => any[],
 *   replayTime: () => number|null}} context
 * @param {{sensor: string, datastream: string, unit?: string, value?: number, time?: string,
 *   kind: string}} pick
 */
export function showSensorPanel(context, pick) {
  const { ui, history } = context;
  const rule = ruleFor(context.rules(), pick.sensor, pick.datastream);
  const unit = pick.unit || '';
  const u = unit && unit !== '1' ? ` ${unit}` : '';
  const canvas = el('canvas', { width: 320, height: 170, role: 'img', 'aria-label': 'Loading the last 24 hours' });
  Object.assign(canvas.style, { width: '100%', maxWidth: '340px', height: '170px', display: 'block' });
  const note = el('p', { class: 'live-note', text: 'Loading the last 24 hours…' });
  const level = thresholdLevel(pick.value, rule, { time: pick.time });
  const body = el(
    'div',
    { class: 'live-sensor' },
    facts([
      ['Sensor', pick.sensor],
      ['Latest', `${formatValue(pick.value)}${u}`],
      ['At', when(pick.time)],
      ['Limit', rule ? `${rule.operator} ${formatValue(rule.threshold)}${u} (${rule.name || 'rule'})` : 'no rule for this kind'],
      ['State', rule ? { green: 'below the limit', amber: 'close to the limit', red: 'at or beyond the limit', grey: 'no recent value' }[level] : null],
    ]),
    canvas,
    note,
  );
  showPanel(ui, `${kindName(pick.datastream)} at ${pick.sensor}`, body);
  const to = Date.now();
  history.get(pick.sensor, pick.datastream).then(
    (points) => {
      const from = to - DAY_MS;
      const shown = points.filter((p) => p.t >= from);
      drawChart(canvas, { points: shown, from, to, threshold: rule ? rule.threshold : null, unit, cursor: context.replayTime() });
      canvas.setAttribute('aria-label', describeChart(shown, unit));
      note.textContent = describeChart(shown, unit);
    },
    (error) => {
      note.textContent = `The history could not be loaded: ${error.message}`;
    },
  );
}

/** Occupancy flags as people say them. */
const FLAG_TEXT = {
  silent_bays: 'some bay sensors are silent',
  stuck_bays: 'some bay sensors are stuck on one value',
  uncovered: 'part of the capacity has no sensor',
  more_bays_than_capacity: 'more bays than the stated capacity',
  above_capacity: 'the counter reported more free spaces than there are',
  below_zero: 'the counter reported fewer than zero free spaces',
  silent_counter: 'the counter is silent',
  closed: 'closed',
  no_data: 'no data yet',
};

function share(fraction) {
  return typeof fraction === 'number' && Number.isFinite(fraction) ? `${Math.round(fraction * 100)} %` : 'unknown';
}

/**
 * A parking zone's or car park's panel: occupancy now, what is doubtful about it, the
 * forecasts with their 80 % intervals and the method that made them, and the last 24 hours.
 * @param {{api: any, ui: any}} context
 * @param {{place: string, name?: string, key: string}} pick
 * @param {{data?: Record<string, any>}|null} item the marker's newest item
 */
export function showPlacePanel(context, pick, item) {
  const { api, ui } = context;
  const data = (item && item.data) || {};
  const canvas = el('canvas', { width: 320, height: 170, role: 'img', 'aria-label': 'Loading the last 24 hours' });
  Object.assign(canvas.style, { width: '100%', maxWidth: '340px', height: '170px', display: 'block' });
  const note = el('p', { class: 'live-note', text: 'Loading the last 24 hours…' });
  const ahead = (data.forecast || []).map((f) => [
    `In ${f.horizon_min} min`,
    `${share(f.occupancy)} occupied, ${Math.round(f.free)} free (80 %: ${Math.round(f.interval_80[0])}–${Math.round(f.interval_80[1])}; ${f.method.replace('_', ' ')})`,
  ]);
  const flags = (data.flags || []).map((f) => FLAG_TEXT[f] || f).join('; ');
  const body = el(
    'div',
    { class: 'live-parking' },
    facts([
      ['Occupied', `${share(data.value)} (${data.occupied ?? '?'} of ${data.capacity ?? '?'} spaces)`],
      ['Free', data.free],
      ['Unknown', data.unknown ? `${data.unknown} spaces` : null],
      ['Updated', when(data.fresh)],
      ['Note', flags || null],
      ...ahead,
    ]),
    canvas,
    note,
  );
  showPanel(ui, pick.name || data.name || pick.place, body);
  const to = Date.now();
  const from = to - DAY_MS;
  const query = new URLSearchParams({ window: '15m', start: new Date(from).toISOString(), end: new Date(to).toISOString() });
  api.get(`/api/v1/parking/places/${encodeURIComponent(pick.place)}/history?${query}`).then(
    (reply) => {
      const points = (reply.buckets || [])
        .map((b) => ({ t: Date.parse(b.start), v: typeof b.occupancy === 'number' ? b.occupancy * 100 : null }))
        .filter((p) => Number.isFinite(p.t) && typeof p.v === 'number');
      drawChart(canvas, { points, from, to, unit: '%' });
      canvas.setAttribute('aria-label', describeChart(points, '%'));
      note.textContent = describeChart(points, '%');
    },
    (error) => {
      note.textContent = `The history could not be loaded: ${error.message}`;
    },
  );
}

/**
 * An alert's panel, with "Acknowledge" for tokens that may (it posts, then updates the marker).
 * @param {{api: any, ui: any, rules: () => any[], markers: any}} context
 * @param {{id: string, sensor: string, status: string, value: number, datastream: string, time: string}} pick
 */
export function showAlertPanel(context, pick) {
  const { api, ui, markers } = context;
  const rule = context.rules().find((r) => r.id === (pick.rule || markers.item(pick.key)?.data?.rule));
  const status = el('dd', { text: pick.status });
  const message = el('p', { class: 'live-note', role: 'status' });
  const list = facts([
    ['Kind', kindName(pick.datastream)],
    ['Sensor', pick.sensor],
    ['Value', formatValue(pick.value)],
    ['Rule', rule ? `${rule.name}: ${rule.operator} ${formatValue(rule.threshold)}` : null],
    ['Since', when(pick.time)],
  ]);
  list.append(el('dt', { text: 'Status' }), status);
  const body = el('div', { class: 'live-alert' }, list, message);
  const more = facts([]);
  body.insertBefore(more, message);
  if (api.can('acknowledge_alerts') && pick.status === 'open') {
    const button = el('button', { type: 'button', class: 'live-action', text: 'Acknowledge' });
    button.addEventListener('click', async () => {
      button.disabled = true;
      message.textContent = 'Acknowledging…';
      try {
        const alert = await api.post(`/api/v1/alerts/${encodeURIComponent(pick.id)}/acknowledge`);
        markers.setAlertStatus(pick.id, alert.status || 'acknowledged');
        status.textContent = alert.status || 'acknowledged';
        message.textContent = alert.acknowledged_by ? `Acknowledged by ${alert.acknowledged_by}.` : 'Acknowledged.';
        button.remove();
      } catch (error) {
        message.textContent = `Not acknowledged: ${error.message}`;
        button.disabled = false;
      }
    });
    body.append(button);
  }
  showPanel(ui, `Alert: ${kindName(pick.datastream)} at ${pick.sensor}`, body);
  // Who acknowledged and when the alert opened are in the alerts listing.
  api.get('/api/v1/alerts?limit=1000').then(
    (reply) => {
      const alert = (reply.alerts || []).find((a) => a.id === pick.id);
      if (!alert) return;
      more.replaceWith(
        facts([
          ['Opened', when(alert.opened_at)],
          ['Acknowledged', alert.acknowledged_at ? `${when(alert.acknowledged_at)} by ${alert.acknowledged_by || 'someone'}` : null],
        ]),
      );
    },
    () => {},
  );
}

/** @param {{ui: any}} context @param {any} pick @param {any} item */
export function showInspectionPanel(context, pick, item) {
  const data = (item && item.data) || {};
  const body = el(
    'div',
    { class: 'live-inspection' },
    facts([
      ['Status', (data.status || '').replace('_', ' ')],
      ['Category', data.category],
      ['Severity', data.severity],
      ['Assignee', data.assignee],
      ['Changed', when(item && item.time)],
    ]),
    el('p', { class: 'live-text', text: data.description || '' }),
  );
  const color = { open: COLORS.red, in_progress: COLORS.blue }[data.status] || COLORS.grey;
  body.style.borderLeft = `4px solid ${color}`;
  body.style.paddingLeft = '8px';
  showPanel(context.ui, `Inspection: ${data.category || ''}`.trim(), body);
}

/**
 * @param {{ui: any, api: any, openCommentForm?: Function}} context @param {any} pick @param {any} item
 */
export function showCommentPanel(context, pick, item) {
  const data = (item && item.data) || {};
  const response = data.response && typeof data.response === 'object' ? data.response.text : data.response;
  const body = el(
    'div',
    { class: 'live-comment' },
    el('p', { class: 'live-text', text: data.text || '' }),
    facts([
      ['By', data.author],
      ['At', when(item && item.time)],
      ['Reply to', data.reply_to ? 'an earlier comment' : null],
    ]),
    response ? el('div', { class: 'live-response' }, el('strong', { text: 'Answer: ' }), response) : null,
  );
  showPanel(context.ui, data.reply_to ? 'Reply' : 'Comment', body);
}
