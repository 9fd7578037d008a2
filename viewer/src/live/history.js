// Sensor history of the last 24 hours, fetched once per datastream and kept up to date with
// the live values that arrive afterwards. Shared by the sensor panel and the time slider.

export const DAY_MS = 24 * 3600 * 1000;
/** At most this many requests at a time. */
const PARALLEL = 4;

export class History {
  /** @param {{get: (path: string) => Promise<any>}} api @param {{now?: () => number}} [options] */
  constructor(api, { now = () => Date.now() } = {}) {
    this.api = api;
    this.now = now;
    /** @type {Map<string, {points: Array<{t: number, v: number}>, promise: Promise<any>, done: boolean, error: any}>} */
    this.series = new Map();
    this.running = 0;
    /** @type {Array<() => void>} */
    this.waiting = [];
  }

  /** Requests made so far (one per datastream at most). */
  get requests() {
    return this.series.size;
  }

  /**
   * The last 24 hours of one datastream, oldest first: `[{t: ms, v: value}]`.
   * @param {string} sensor @param {string} kind @returns {Promise<Array<{t: number, v: number}>>}
   */
  get(sensor, kind) {
    const key = `${sensor}\n${kind}`;
    let entry = this.series.get(key);
    if (!entry) {
      entry = { points: [], promise: null, done: false, error: null };
      this.series.set(key, entry);
      entry.promise = this.slot(() => this.fetch(sensor, kind)).then(
        (points) => {
          // Live values that arrived while the request ran are kept (they are newer).
          const seen = new Set(points.map((p) => p.t));
          entry.points = [...points, ...entry.points.filter((p) => !seen.has(p.t))].sort((a, b) => a.t - b.t);
          entry.done = true;
          return entry.points;
        },
        (error) => {
          entry.error = error;
          this.series.delete(key); // a later look may try again
          throw error;
        },
      );
    }
    return entry.promise;
  }

  async fetch(sensor, kind) {
    const from = new Date(this.now() - DAY_MS).toISOString();
    const query = new URLSearchParams({ kind, from, limit: '10000' });
    const reply = await this.api.get(`/api/v1/sensors/${encodeURIComponent(sensor)}/observations?${query}`);
    return (reply.observations || [])
      .map((o) => ({ t: Date.parse(o.time), v: o.value }))
      .filter((p) => Number.isFinite(p.t) && typeof p.v === 'number')
      .sort((a, b) => a.t - b.t);
  }

  slot(task) {
    return new Promise((resolve, reject) => {
      const run = () => {
        this.running += 1;
        task().then(resolve, reject).finally(() => {
          this.running -= 1;
          const next = this.waiting.shift();
          if (next) next();
        });
      };
      if (this.running < PARALLEL) run();
      else this.waiting.push(run);
    });
  }

  /** A live value of a datastream already asked for. */
  add(sensor, kind, t, v) {
    const entry = this.series.get(`${sensor}\n${kind}`);
    if (!entry || !Number.isFinite(t) || typeof v !== 'number') return;
    const points = entry.points;
    if (points.length && points[points.length - 1].t >= t) {
      if (points.some((p) => p.t === t)) return;
      points.push({ t, v });
      points.sort((a, b) => a.t - b.t);
    } else {
      points.push({ t, v });
    }
    const horizon = this.now() - 24 * 3600 * 1000; // the panel and the slider show 24 hours
    let old = 0;
    while (old < points.length && points[old].t < horizon) old += 1;
    if (old) points.splice(0, old);
  }

  /** True once the datastream's history has arrived. */
  loaded(sensor, kind) {
    const entry = this.series.get(`${sensor}\n${kind}`);
    return Boolean(entry && entry.done);
  }

  /**
   * The value a datastream had at `t`: its newest reading at or before `t` as `{value, time}`,
   * null when it had none, undefined while its history is not (yet) loaded.
   */
  valueAt(sensor, kind, t) {
    const entry = this.series.get(`${sensor}\n${kind}`);
    if (!entry || !entry.done) return undefined;
    const points = entry.points;
    let lo = 0;
    let hi = points.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (points[mid].t <= t) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? null : { value: points[found].v, time: points[found].t };
  }
}
