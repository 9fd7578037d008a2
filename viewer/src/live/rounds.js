// Participation rounds as the live view needs them: which open rounds include an asset (for
// the "Comment" button on a tapped planned object), and a round's visible comments for pages
// whose token cannot follow the live overlay (residents).
import { openCommentForm } from '../comments.js';
import { el } from './panels.js';

const ROUNDS_TTL_MS = 60_000;

export class Rounds {
  /** @param {any} api @param {any} ui @param {{now?: () => number}} [options] */
  constructor(api, ui, { now = () => Date.now() } = {}) {
    this.api = api;
    this.ui = ui;
    this.now = now;
    this.cache = null;
    this.cachedAt = 0;
  }

  /** All rounds this token reads (cached for a minute). @returns {Promise<any[]>} */
  async list() {
    if (this.cache && this.now() - this.cachedAt < ROUNDS_TTL_MS) return this.cache;
    const reply = await this.api.get('/api/v1/rounds?limit=1000');
    this.cache = reply.rounds || [];
    this.cachedAt = this.now();
    return this.cache;
  }

  /** Open rounds that include asset `assetId`. @param {string} assetId */
  async openWith(assetId) {
    if (!assetId || !this.api.can('read_rounds') || !this.api.can('comment')) return [];
    const rounds = await this.list();
    return rounds.filter((r) => r.state === 'open' && Array.isArray(r.assets) && r.assets.includes(assetId));
  }

  /**
   * "Comment" buttons for a tapped feature, one per open round that includes its asset;
   * null when there is none (or the token may not comment).
   * @param {{assetId: string, featureId?: string|null, point?: number[]}} pick
   * @param {{onSent?: (comment: any) => void}} [options]
   * @returns {Promise<HTMLElement|null>}
   */
  async commentButtons(pick, { onSent } = {}) {
    let rounds;
    try {
      rounds = await this.openWith(pick.assetId);
    } catch {
      return null;
    }
    if (!rounds.length) return null;
    const box = el('div', { class: 'live-comment-buttons' });
    for (const round of rounds) {
      const name = rounds.length > 1 ? `Comment (${round.title})` : 'Comment';
      const button = el('button', { type: 'button', class: 'live-action', text: name });
      button.addEventListener('click', () =>
        openCommentForm(this.api, this.ui, {
          roundId: round.id,
          place: { assetId: pick.assetId, featureId: pick.featureId ?? null, point: pick.point },
          title: `Comment: ${round.title}`,
          onSent,
        }),
      );
      box.append(button);
    }
    return box;
  }

  /**
   * A round's visible comments as live items (layer `annotations`), newest first, positions
   * in the viewer's ENU frame.
   * @param {string} roundId @param {(lon: number, lat: number, h: number) => number[]} toEnu
   */
  async commentItems(roundId, toEnu) {
    const query = new URLSearchParams({ round: roundId, limit: '500' });
    const reply = await this.api.get(`/api/v1/comments?${query}`);
    return (reply.comments || [])
      .filter((c) => c.status !== 'hidden' && Array.isArray(c.location))
      .map((c) => ({
        key: `comment:${c.id}`,
        layer: 'annotations',
        kind: c.reply_to ? 'reply' : 'comment',
        time: c.created_at,
        position: toEnu(c.location[0], c.location[1], c.location[2]),
        data: {
          comment: c.id, thread: c.thread, round: c.round, text: c.text, author: c.author_name,
          reply_to: c.reply_to, asset: c.asset, feature: c.feature, response: c.response,
        }, // prettier-ignore
      }));
  }
}
