// The assets the page knows, newest first, and the one place that follows conversions: every
// asset that is queued or processing is polled (assets/job.js) until it is ready or failed,
// and whoever subscribed hears of each change.
import { followJob, isFinal } from './job.js';

/** The list sizes "Show more" steps through (the API answers at most 1000, newest first). */
export const PAGE_SIZES = [50, 200, 1000];

export class AssetStore {
  /** @param {import('../api.js').Api} api */
  constructor(api) {
    this.api = api;
    /** @type {Map<string, any>} */
    this.assets = new Map();
    /** @type {Map<string, {stop: () => void}>} */
    this.polls = new Map();
    /** @type {Set<(event: {type: 'list'|'change'|'remove', asset?: any, id?: string}) => void>} */
    this.listeners = new Set();
    this.layer = '';
    this.limit = PAGE_SIZES[0];
    /** True when the last list was cut off at `limit` (there may be more). */
    this.more = false;
  }

  /** @param {(event: any) => void} listener @returns {() => void} unsubscribe */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event) {
    for (const listener of this.listeners) listener(event);
  }

  /** The assets, newest first. */
  list() {
    return [...this.assets.values()].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  }

  /**
   * Load the list again (GET /api/v1/assets?layer=&limit=).
   * @param {{layer?: string, limit?: number}} [options] kept for later reloads
   */
  async load({ layer = this.layer, limit = this.limit } = {}) {
    this.layer = layer;
    this.limit = limit;
    const query = new URLSearchParams({ limit: String(limit) });
    if (layer) query.set('layer', layer);
    const reply = await this.api.get(`/api/v1/assets?${query}`);
    const assets = reply.assets || [];
    this.more = assets.length >= limit;
    const keep = new Set(assets.map((a) => a.id));
    for (const id of [...this.assets.keys()]) {
      if (!keep.has(id) && !this.polls.has(id)) this.assets.delete(id);
    }
    for (const asset of assets) {
      this.assets.set(asset.id, asset);
      this.follow(asset);
    }
    this.emit({ type: 'list' });
  }

  /** The next larger list size, or null at the largest. */
  nextLimit() {
    return PAGE_SIZES.find((n) => n > this.limit) ?? null;
  }

  /** Add or replace one asset (an upload's answer, a PATCH's), and follow it if it converts. */
  upsert(asset) {
    this.assets.set(asset.id, asset);
    this.emit({ type: 'change', asset });
    this.follow(asset);
  }

  /** Poll `asset` while it is converting. */
  follow(asset) {
    if (isFinal(asset.status) || this.polls.has(asset.id)) return;
    const poll = followJob(this.api, asset.id, {
      onUpdate: (current) => {
        this.assets.set(current.id, current);
        if (isFinal(current.status)) this.polls.delete(current.id);
        this.emit({ type: 'change', asset: current });
      },
      onGone: () => {
        this.polls.delete(asset.id);
        this.forget(asset.id);
      },
    });
    this.polls.set(asset.id, poll);
  }

  /** Drop an asset that is gone. @param {string} id */
  forget(id) {
    const poll = this.polls.get(id);
    if (poll) poll.stop();
    this.polls.delete(id);
    if (this.assets.delete(id)) this.emit({ type: 'remove', id });
  }

  /** PATCH /api/v1/assets/{id} with `changes`; the answer replaces the asset. */
  async change(id, changes) {
    const asset = await this.api.patch(`/api/v1/assets/${encodeURIComponent(id)}`, changes);
    this.upsert(asset);
    return asset;
  }

  /** DELETE /api/v1/assets/{id}. */
  async remove(id) {
    try {
      await this.api.del(`/api/v1/assets/${encodeURIComponent(id)}`);
    } catch (error) {
      if (!error || error.status !== 404) throw error; // already gone is what was asked
    }
    this.forget(id);
  }

  /** Stop every poll. */
  close() {
    for (const poll of this.polls.values()) poll.stop();
    this.polls.clear();
  }
}
