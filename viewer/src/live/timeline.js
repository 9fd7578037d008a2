// The time slider: replays sensor values and colours of the last 24 hours from their history;
// "Live" returns to live values. History is fetched lazily, once per datastream, for at most
// `maxSensors` datastreams (the nearest to the camera when the slider is first moved).
import { el } from './panels.js';
import { DAY_MS } from './history.js';

const STEP_MIN = 5;

export class Timeline {
  /**
   * @param {{container: HTMLElement, history: import('./history.js').History,
   *   markers: import('./markers.js').MarkerLayer, maxSensors?: number, now?: () => number,
   *   onChange?: (time: number|null) => void}} options
   */
  constructor({ container, history, markers, maxSensors = 50, now = () => Date.now(), onChange }) {
    this.history = history;
    this.markers = markers;
    this.maxSensors = maxSensors;
    this.now = now;
    this.onChange = onChange;
    this.time = null; // null: live
    this.base = now();
    /** @type {Set<string>} datastreams asked for by the slider */
    this.asked = new Set();
    this.redraw = null;

    const id = `live-time-${Math.random().toString(36).slice(2, 8)}`;
    this.input = el('input', {
      id, type: 'range', min: -(DAY_MS / 60000), max: 0, step: STEP_MIN, value: 0,
      'aria-valuetext': 'live',
    }); // prettier-ignore
    this.output = el('output', { for: id, class: 'live-time-value', text: 'Live' });
    this.button = el('button', { type: 'button', class: 'live-time-live', text: 'Live', 'aria-pressed': 'true' });
    this.element = el(
      'div',
      { class: 'live-timeline', role: 'group', 'aria-label': 'Time of the sensor values' },
      el('label', { for: id, text: 'Time' }),
      this.input,
      this.output,
      this.button,
    );
    Object.assign(this.element.style, {
      position: 'fixed', left: '12px', bottom: '12px',
      display: 'flex', gap: '8px', alignItems: 'center', padding: '6px 10px',
      background: 'rgba(255,255,255,0.92)', color: '#212529', borderRadius: '8px',
      boxShadow: '0 2px 10px rgba(0,0,0,.2)', font: '13px system-ui, sans-serif', zIndex: '10',
      width: 'min(560px, calc(100vw - 24px))', boxSizing: 'border-box',
    }); // prettier-ignore
    this.input.style.flex = '1';
    this.output.style.minWidth = '9em';
    this.input.addEventListener('input', () => this.fromInput());
    this.button.addEventListener('click', () => this.live());
    container.append(this.element);
  }

  fromInput() {
    const minutes = Number(this.input.value);
    if (minutes >= 0) {
      this.live();
      return;
    }
    if (this.time === null) this.base = this.now();
    this.show(this.base + minutes * 60000);
  }

  /** Replay the values at `time` (ms). */
  show(time) {
    this.time = time;
    const ago = Math.round((this.base - time) / 60000);
    const text = `${new Date(time).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })} (${agoText(ago)})`;
    this.output.textContent = text;
    this.input.setAttribute('aria-valuetext', text);
    this.button.setAttribute('aria-pressed', 'false');
    this.load();
    this.apply();
    if (this.onChange) this.onChange(time);
  }

  apply() {
    const time = this.time;
    if (time === null) return;
    const history = this.history;
    this.markers.setReplay((item) => {
      const data = item.data || {};
      return history.valueAt(data.sensor, item.kind, time);
    }, time);
  }

  /** Ask for the history of the nearest datastreams not asked for yet, within the bound. */
  load() {
    if (this.asked.size >= this.maxSensors) return;
    for (const item of this.markers.nearest(['sensors', 'parking'], this.maxSensors)) {
      if (this.asked.size >= this.maxSensors) break;
      const sensor = item.data && item.data.sensor;
      if (!sensor || !item.kind) continue;
      const key = `${sensor}\n${item.kind}`;
      if (this.asked.has(key)) continue;
      this.asked.add(key);
      this.history.get(sensor, item.kind).then(
        () => this.scheduleApply(),
        () => {},
      );
    }
  }

  scheduleApply() {
    if (this.redraw !== null) return;
    this.redraw = setTimeout(() => {
      this.redraw = null;
      this.apply();
    }, 50);
  }

  /** Back to live values. */
  live() {
    this.time = null;
    this.input.value = '0';
    this.output.textContent = 'Live';
    this.input.setAttribute('aria-valuetext', 'live');
    this.button.setAttribute('aria-pressed', 'true');
    this.markers.setReplay(null);
    if (this.onChange) this.onChange(null);
  }

  dispose() {
    if (this.redraw !== null) clearTimeout(this.redraw);
    this.element.remove();
  }
}

function agoText(minutes) {
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min ago` : `${hours} h ago`;
}
