// Round mode (/viewer?round=ID): what a resident sees after opening a participation round's
// public link. The round's planned objects (and the public assets in its area around them),
// its title, description and window, the comments written so far, and one thing to do: tap
// the ground to comment at a place, or tap an object to comment on it. No live overlay, no
// other pages.
//
// Tokens: the link's token (scope `round-link:ID`) reads the round and its visible comments
// but cannot comment; the first comment joins the round (POST /api/v1/rounds/{id}/participants)
// and is sent with the resident's own token (scope `round:ID`), which this tab keeps in
// sessionStorage so that later comments appear under the same pseudonym. A resident's own
// token, a staff token or no token work too (no token: read-only).
import * as THREE from 'three';
import { Api } from './api.js';
import { openCommentForm } from './comments.js';
import { formatTime, h } from './assets/dom.js';

/** sessionStorage key of the resident's own token for round `id`. @param {string} id */
export const residentKey = (id) => `arserver-round-${id}`;
const PAGE = 100;
const CONTEXT_LIMIT = 50;
const STYLE_ID = 'round-style';

/**
 * @typedef {{url: string, assetId: string, lifecycle: string, name: string}} TilesetEntry
 * @typedef {{
 *   tilesets: TilesetEntry[],
 *   onPick: (pick: any) => void,
 *   round: any | null,
 *   state: {canComment: boolean, reason: string, joined: boolean, pseudonym: string|null, comments: number},
 *   close: () => void,
 * }} RoundView
 */

/**
 * Set up round mode.
 *
 * How the page uses it (main.js):
 * ```js
 * const round = await startRound(viewer, api, roundId, ui);
 * viewer.onPick(round.onPick);          // taps: ground -> comment at a place, feature -> on the object,
 *                                       // this module's comment markers -> the comment's details
 * await viewer.loadTilesets(round.tilesets);
 * ```
 * It never throws for what a resident can run into (an unknown round, an expired link, a
 * closed round): it says so in its panel and returns no tilesets (unknown, unreadable) or the
 * round's objects read-only (closed, upcoming). A link token the server no longer accepts
 * (expired, replaced) is dropped from `api` (`api.token = ''`), so that the page, tiles
 * included, goes on reading the public round without it.
 *
 * @param {any} viewer the core's Viewer (`overlayGroup`, `origin`, `lonLatHToLocal`, `flyTo`)
 * @param {Api} api the page's client, with the token of the address fragment (or none)
 * @param {string} roundId
 * @param {{showPanel?: (title: string, body: HTMLElement) => void, hidePanel?: () => void,
 *   container?: HTMLElement}} [ui] the core's panel (used for the comment form and a comment's
 *   details); the round's own panel goes into `ui.container`, else into the page's body
 * @returns {Promise<RoundView>}
 */
export async function startRound(viewer, api, roundId, ui = {}) {
  addStyle();
  const panel = new RoundPanel(ui.container || document.body);
  const shared = typeof window !== 'undefined' && window.arviewer ? window.arviewer.state : null;
  const view = {
    tilesets: [],
    onPick: () => {},
    round: null,
    state: { canComment: false, reason: '', joined: false, pseudonym: null, comments: 0 },
    close: () => {},
  };
  const report = () => {
    if (shared) shared.round = { id: roundId, status: view.round ? view.round.state : null, ...view.state };
  };
  const fail = (text) => {
    panel.problem(text);
    if (shared && Array.isArray(shared.errors)) shared.errors.push(text);
    view.state.reason = text;
    report();
    return view;
  };

  // Who is asking: the link, a resident who joined, staff, or nobody.
  let identity = api.identity;
  let linkTrouble = '';
  if (api.token && !identity) {
    try {
      identity = await api.whoami();
    } catch (error) {
      if (error.status === 401) {
        linkTrouble =
          'This link has expired or has been replaced by a new one, so you cannot comment with it. ' +
          'Ask the municipality for the current link.';
        // A public round and its objects are still readable without a token: the page goes on
        // without it (the core's tile requests too, as they use this same client).
        api.token = '';
        api.identity = null;
        identity = null;
      } else {
        return fail(`The round cannot be loaded: ${error.message}`);
      }
    }
  }
  const scope = identity ? identity.scope || '' : '';

  let round;
  try {
    round = await api.get(`/api/v1/rounds/${encodeURIComponent(roundId)}`);
  } catch (error) {
    if (error.status === 404) {
      return fail(
        linkTrouble ||
          (scope.startsWith('round') && !scope.endsWith(`:${roundId}`)
            ? 'This link belongs to another round than the one in the address. Open the link exactly as you received it.'
            : 'There is no such round (or it is not public). Check the link you received.'),
      );
    }
    if (error.status === 401) return fail('This link has expired or has been replaced. Ask the municipality for the current link.');
    return fail(`The round cannot be loaded: ${error.message}`);
  }
  view.round = round;

  const participation = new Participation(api, roundId, identity);
  const stored = participation.storedPseudonym();
  if (stored) {
    view.state.joined = true;
    view.state.pseudonym = stored;
  }
  const why = () => commentBlock(round, identity, linkTrouble);
  view.state.reason = why();
  view.state.canComment = view.state.reason === '';
  panel.show(round, { reason: view.state.reason, linkTrouble, pseudonym: view.state.pseudonym });

  // What to load: the round's objects, then the public assets in its area for context.
  view.tilesets = await tilesetsOf(api, round);
  if (!view.tilesets.length) panel.note('The objects of this plan are not shown yet (none is ready to view).');

  // The comments so far, in the panel and as markers.
  const markers = new CommentMarkers(viewer);
  const comments = new Map();
  let cursor = null;
  const addComments = (list) => {
    for (const comment of list) comments.set(comment.id, comment);
    panel.comments([...comments.values()], { more: Boolean(cursor), onShow: (c) => showOnMap(viewer, c) });
    markers.set([...comments.values()]);
    view.state.comments = comments.size;
    report();
  };
  const loadPage = async () => {
    const query = new URLSearchParams({ round: roundId, limit: String(PAGE) });
    if (cursor) query.set('cursor', cursor);
    try {
      const reply = await api.get(`/api/v1/comments?${query}`);
      cursor = reply.next || null;
      addComments((reply.comments || []).filter((c) => c.status !== 'hidden'));
    } catch (error) {
      panel.commentsUnavailable(
        error.status === 401 || error.status === 403
          ? 'The comments are shown to those who open the round\u2019s link.'
          : `The comments cannot be loaded: ${error.message}`,
      );
    }
  };
  panel.onMore = loadPage;
  await loadPage();

  const commentApi = {
    post: async (path, body) => {
      const client = await participation.client();
      view.state.joined = true;
      view.state.pseudonym = participation.pseudonym;
      panel.pseudonym(participation.pseudonym);
      report();
      return participation.send(client, path, body);
    },
  };

  view.onPick = (pick) => {
    if (!pick) return;
    if (pick.kind === 'comment') {
      const comment = comments.get(pick.id) || pick.comment;
      if (comment) showPanel(ui, 'Comment', commentBody(comment, () => showOnMap(viewer, comment)));
      return;
    }
    if (pick.kind !== 'ground' && pick.kind !== 'feature') return;
    const reason = why();
    view.state.reason = reason;
    view.state.canComment = reason === '';
    report();
    if (reason) {
      showPanel(ui, 'Commenting', h('p', { class: 'round-why', text: reason }));
      return;
    }
    const point = Array.isArray(pick.point) ? pick.point : null;
    if (point && round.area && !insideArea(round.area, point[0], point[1])) {
      showPanel(
        ui,
        'Outside the plan\u2019s area',
        h('p', { text: 'That place is outside the area this round is about. Tap a place inside it (the outlined area), or an object of the plan.' }),
      );
      return;
    }
    const place =
      pick.kind === 'feature' && pick.assetId
        ? { assetId: pick.assetId, featureId: pick.featureId ?? null, point: point || undefined }
        : { point };
    if (!place.assetId && !point) return;
    openCommentForm(commentApi, ui, {
      roundId,
      place,
      title: `Comment: ${round.title}`,
      onSent: (comment) => addComments([comment]),
    });
  };

  markers.area(round.area);
  view.close = () => {
    markers.dispose();
    panel.remove();
  };
  report();
  return view;
}

/** Why this visitor cannot comment now ('' when they can). */
function commentBlock(round, identity, linkTrouble) {
  const now = Date.now();
  if (round.state === 'closed' || Date.parse(round.ends_at) <= now) {
    return `This round closed on ${formatTime(round.ends_at)}: new comments are no longer taken. You can still read what was said.`;
  }
  if (round.state === 'upcoming' && Date.parse(round.starts_at) > now) {
    return `This round opens on ${formatTime(round.starts_at)}; you can comment from then.`;
  }
  if (linkTrouble) return linkTrouble;
  if (!identity) return 'To comment, open the round\u2019s link exactly as you received it (letter, poster or website).';
  const scope = identity.scope || '';
  const actions = identity.actions || [];
  if (scope === `round-link:${round.id}` || actions.includes('comment')) return '';
  return 'This token may read the round but not comment in it.';
}

/** Joining the round on the first comment, and the resident's own token after that. */
class Participation {
  /** @param {Api} api @param {string} roundId @param {any} identity */
  constructor(api, roundId, identity) {
    this.api = api;
    this.roundId = roundId;
    this.identity = identity;
    this.pseudonym = null;
    this.own = null;
  }

  /** True for the round's shared link (which must join before commenting). */
  isLink() {
    return Boolean(this.identity && this.identity.scope === `round-link:${this.roundId}`);
  }

  /** The pseudonym of an earlier join in this tab, if any. */
  storedPseudonym() {
    if (!this.isLink()) return null;
    const saved = this.load();
    return saved ? saved.pseudonym : null;
  }

  load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(residentKey(this.roundId)) || 'null');
      return saved && typeof saved.token === 'string' ? saved : null;
    } catch {
      return null;
    }
  }

  /** The client that comments: the page's own, or the resident's after joining. */
  async client() {
    if (!this.isLink()) return this.api;
    if (this.own) return this.own;
    const saved = this.load();
    if (saved) {
      this.own = new Api(saved.token);
      this.pseudonym = saved.pseudonym;
      return this.own;
    }
    return this.join();
  }

  async join() {
    let joined;
    try {
      joined = await this.api.post(`/api/v1/rounds/${encodeURIComponent(this.roundId)}/participants`, {});
    } catch (error) {
      if (error.status === 409) error.message = `you cannot join this round: ${error.message}`;
      throw error;
    }
    sessionStorage.setItem(residentKey(this.roundId), JSON.stringify({ token: joined.token, pseudonym: joined.pseudonym }));
    this.own = new Api(joined.token);
    this.pseudonym = joined.pseudonym;
    return this.own;
  }

  /** Post with `client`; a resident token that stopped working is replaced by joining again once. */
  async send(client, path, body) {
    try {
      return await client.post(path, body);
    } catch (error) {
      if (error.status !== 401 || !this.isLink() || client === this.api) throw error;
      sessionStorage.removeItem(residentKey(this.roundId));
      this.own = null;
      const fresh = await this.join();
      return fresh.post(path, body);
    }
  }
}

/** The round's ready objects, then the ready public assets in its area (context). */
async function tilesetsOf(api, round) {
  const ids = Array.isArray(round.assets) ? round.assets : [];
  const own = await Promise.all(
    ids.map((id) => api.get(`/api/v1/assets/${encodeURIComponent(id)}`).catch(() => null)),
  );
  const entry = (asset, lifecycle) => ({
    url: `/tiles/${encodeURIComponent(asset.id)}/tileset.json`,
    assetId: asset.id,
    lifecycle,
    name: asset.name,
  });
  const list = own.filter((a) => a && a.status === 'ready').map((a) => entry(a, a.lifecycle || 'planned'));
  if (Array.isArray(round.bbox) && round.bbox.length === 4) {
    try {
      const query = new URLSearchParams({ bbox: round.bbox.join(','), limit: String(CONTEXT_LIMIT) });
      const reply = await api.get(`/api/v1/assets?${query}`);
      for (const asset of reply.assets || []) {
        if (asset.status === 'ready' && asset.public && !ids.includes(asset.id)) list.push(entry(asset, asset.lifecycle || 'existing'));
      }
    } catch {
      // context only: the plan's own objects are what matters
    }
  }
  return list;
}

/** Ray casting on a GeoJSON Polygon or MultiPolygon (holes excluded). */
export function insideArea(area, lon, lat) {
  const inRing = (ring) => {
    let inside = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
  const inPolygon = (rings) => rings.length > 0 && inRing(rings[0]) && !rings.slice(1).some(inRing);
  if (area.type === 'Polygon') return inPolygon(area.coordinates);
  if (area.type === 'MultiPolygon') return area.coordinates.some(inPolygon);
  return true;
}

function showPanel(ui, title, body) {
  if (ui && typeof ui.showPanel === 'function') ui.showPanel(title, body);
  else {
    const box = h('section', { class: 'round-fallback-panel', role: 'dialog', 'aria-label': title }, h('h2', { text: title }), body);
    const close = h('button', { type: 'button', text: 'Close', onclick: () => box.remove() });
    box.append(close);
    document.querySelector('.round-fallback-panel')?.remove();
    document.body.append(box);
  }
}

/** Fly to where a comment stands. */
function showOnMap(viewer, comment) {
  const [lon, lat, height] = comment.location || [];
  if (!Number.isFinite(lon) || !Number.isFinite(lat) || typeof viewer.flyTo !== 'function') return;
  const ground = Number.isFinite(height) ? height : viewer.origin ? viewer.origin[2] : 0;
  viewer.flyTo(lon, lat, ground);
}

/** One comment, its replies' place in the thread, and the municipality's answer. */
function commentBody(comment, onShow) {
  return h(
    'article',
    { class: 'round-comment', 'data-comment': comment.id },
    h(
      'header',
      {},
      h('strong', { text: comment.author_name }),
      comment.author_kind === 'staff' ? h('span', { class: 'round-badge', text: 'municipality' }) : null,
      ' ',
      h('time', { datetime: comment.created_at, text: formatTime(comment.created_at) }),
    ),
    h('p', { class: 'round-text', text: comment.text }),
    comment.asset ? h('p', { class: 'round-on', text: 'On an object of the plan.' }) : null,
    comment.response
      ? h(
          'div',
          { class: 'round-response' },
          h('strong', { text: 'Answer of the municipality' }),
          ' ',
          h('time', { datetime: comment.response.at, text: formatTime(comment.response.at) }),
          h('p', { text: comment.response.text }),
        )
      : null,
    Array.isArray(comment.location) && onShow
      ? h('button', { type: 'button', class: 'round-show', text: 'Show on the map', onclick: onShow })
      : null,
  );
}

/** The round's own panel: what the round is, its window, its comments. */
class RoundPanel {
  /** @param {HTMLElement} parent */
  constructor(parent) {
    this.body = h('div', { class: 'round-body' });
    this.toggle = h('button', { type: 'button', class: 'round-toggle', 'aria-expanded': 'true', text: 'Hide' });
    this.element = h(
      'aside',
      { class: 'round-panel', id: 'round-panel', 'aria-label': 'Participation round' },
      this.toggle,
      this.body,
    );
    this.toggle.addEventListener('click', () => {
      const open = this.toggle.getAttribute('aria-expanded') !== 'true';
      this.toggle.setAttribute('aria-expanded', String(open));
      this.toggle.textContent = open ? 'Hide' : 'Show the round';
      this.body.hidden = !open;
      this.element.classList.toggle('collapsed', !open);
    });
    this.list = h('ol', { class: 'round-comments', 'aria-live': 'polite' });
    this.count = h('h3', { class: 'round-count', text: 'Comments' });
    this.more = h('button', { type: 'button', class: 'round-more', text: 'Show older comments', hidden: true });
    this.more.addEventListener('click', async () => {
      this.more.disabled = true;
      try {
        if (this.onMore) await this.onMore();
      } finally {
        this.more.disabled = false;
      }
    });
    this.who = h('p', { class: 'round-who', hidden: true });
    this.notes = h('div', { class: 'round-notes' });
    this.onMore = null;
    this.open = false;
    if (parent === document.body) this.element.classList.add('floating');
    parent.append(this.element);
  }

  problem(text) {
    this.body.replaceChildren(h('h2', { text: 'Participation round' }), h('p', { class: 'round-problem', role: 'alert', text }));
  }

  note(text) {
    this.notes.append(h('p', { class: 'round-note', text }));
  }

  show(round, { reason, linkTrouble, pseudonym }) {
    const now = Date.now();
    this.open = !reason;
    let span;
    if (round.state === 'closed' || Date.parse(round.ends_at) <= now) span = `Closed since ${formatTime(round.ends_at)}`;
    else if (round.state === 'upcoming' && Date.parse(round.starts_at) > now) {
      span = `Opens ${formatTime(round.starts_at)}, open until ${formatTime(round.ends_at)}`;
    } else span = `Open until ${formatTime(round.ends_at)}`;
    const how = reason
      ? h('p', { class: linkTrouble ? 'round-problem' : 'round-why', role: linkTrouble ? 'alert' : null, text: reason })
      : h('p', { class: 'round-how', text: 'Tap the ground to comment at a place, or tap an object of the plan to comment on it.' });
    this.body.replaceChildren(
      h('p', { class: 'round-kicker', text: 'Participation round' }),
      h('h2', { class: 'round-title', text: round.title }),
      h('p', { class: `round-window round-${round.state}`, text: span }),
      round.description ? h('p', { class: 'round-description', text: round.description }) : null,
      how,
      this.who,
      this.notes,
      round.privacy_notice
        ? h('details', { class: 'round-privacy' }, h('summary', { text: 'What is stored about you' }), h('p', { text: round.privacy_notice }))
        : null,
      this.count,
      this.list,
      this.more,
    );
    this.pseudonym(pseudonym);
  }

  pseudonym(name) {
    if (!name) return;
    this.who.hidden = false;
    this.who.textContent = `You comment as ${name}.`;
  }

  /** @param {any[]} list @param {{more: boolean, onShow: (c: any) => void}} options */
  comments(list, { more, onShow }) {
    const roots = new Map();
    const replies = list.filter((c) => c.reply_to && c.thread !== c.id);
    for (const c of list) if (!replies.includes(c)) roots.set(c.id, { comment: c, replies: [] });
    for (const reply of replies) {
      const thread = roots.get(reply.thread);
      if (thread) thread.replies.push(reply);
      else roots.set(reply.id, { comment: reply, replies: [] });
    }
    const newest = [...roots.values()].sort((a, b) => String(b.comment.created_at).localeCompare(String(a.comment.created_at)));
    this.list.replaceChildren(
      ...newest.map(({ comment, replies: answers }) =>
        h(
          'li',
          {},
          commentBody(comment, () => onShow(comment)),
          answers.length
            ? h(
                'ol',
                { class: 'round-replies' },
                answers
                  .sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)))
                  .map((r) => h('li', {}, commentBody(r, () => onShow(r)))),
              )
            : null,
        ),
      ),
    );
    this.count.textContent = list.length
      ? `Comments (${list.length}${more ? '+' : ''})`
      : this.open
        ? 'No comments yet: be the first.'
        : 'No comments.';
    this.more.hidden = !more;
  }

  commentsUnavailable(text) {
    this.count.textContent = 'Comments';
    this.list.replaceChildren(h('li', { class: 'round-note', text }));
  }

  remove() {
    this.element.remove();
  }
}

/** Comment pins (of a constant size on screen) and the round's outline in the viewer's overlay group. */
class CommentMarkers {
  constructor(viewer) {
    this.viewer = viewer;
    this.group = new THREE.Group();
    this.group.name = 'round-comments';
    /** @type {Array<() => void>} */
    this.pending = [];
    this.timer = null;
    this.resident = pinMaterial('#7b3fbf');
    this.staff = pinMaterial('#0b5cad');
    if (viewer && viewer.overlayGroup) viewer.overlayGroup.add(this.group);
  }

  /** Runs `fn` once the viewer knows its origin (its first tileset is placed). */
  whenPlaced(fn) {
    if (!this.viewer || typeof this.viewer.lonLatHToLocal !== 'function') return;
    if (this.viewer.origin) {
      fn();
      return;
    }
    this.pending.push(fn);
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.viewer.origin) return;
      clearInterval(this.timer);
      this.timer = null;
      for (const run of this.pending.splice(0)) run();
    }, 250);
  }

  /** @param {any[]} comments */
  set(comments) {
    this.whenPlaced(() => {
      for (const child of [...this.group.children]) if (child.name === 'comment') this.group.remove(child);
      const ground = this.viewer.origin[2];
      for (const c of comments) {
        const [lon, lat, height] = c.location || [];
        if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
        const h0 = Number.isFinite(height) ? height : ground;
        const pin = new THREE.Sprite(c.author_kind === 'staff' ? this.staff : this.resident);
        pin.name = 'comment';
        pin.center.set(0.5, 0);
        pin.scale.set(0.035, 0.05, 1);
        pin.position.copy(this.viewer.lonLatHToLocal(lon, lat, h0));
        pin.renderOrder = 10;
        pin.userData.pick = { kind: 'comment', id: c.id, comment: c, point: [lon, lat, h0] };
        this.group.add(pin);
      }
      if (typeof this.viewer.requestRender === 'function') this.viewer.requestRender();
    });
  }

  /** The round's area as a line just above the lowest ground. */
  area(area) {
    if (!area) return;
    this.whenPlaced(() => {
      const rings = area.type === 'Polygon' ? [area.coordinates[0]] : area.type === 'MultiPolygon' ? area.coordinates.map((p) => p[0]) : [];
      const h0 = this.viewer.origin[2] + 0.3;
      for (const ring of rings) {
        const points = ring.map(([lon, lat]) => this.viewer.lonLatHToLocal(lon, lat, h0));
        const line = new THREE.Line(new THREE.BufferGeometry().setFromPoints(points), new THREE.LineBasicMaterial({ color: 0xf2a900 }));
        line.name = 'round-area';
        this.group.add(line);
      }
    });
  }

  dispose() {
    if (this.timer) clearInterval(this.timer);
    this.pending = [];
    this.group.removeFromParent();
    this.group.traverse((o) => {
      if (o.geometry && !o.isSprite) o.geometry.dispose();
    });
    for (const material of [this.resident, this.staff]) {
      material.map.dispose();
      material.dispose();
    }
  }
}

/** A map pin drawn on a canvas (no image to fetch), its tip at the bottom centre. @param {string} color */
function pinMaterial(color) {
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 92;
  const g = canvas.getContext('2d');
  if (g) {
    g.fillStyle = color;
    g.strokeStyle = '#ffffff';
    g.lineWidth = 5;
    g.beginPath();
    g.arc(32, 32, 27, Math.PI * 0.8, Math.PI * 2.2);
    g.lineTo(32, 89);
    g.closePath();
    g.fill();
    g.stroke();
    g.fillStyle = '#ffffff';
    for (const x of [20, 32, 44]) {
      g.beginPath();
      g.arc(x, 32, 4.5, 0, Math.PI * 2);
      g.fill();
    }
  }
  const map = new THREE.CanvasTexture(canvas);
  map.colorSpace = THREE.SRGBColorSpace;
  return new THREE.SpriteMaterial({ map, sizeAttenuation: false, depthTest: false, transparent: true });
}

const STYLE = `
.round-panel { width: min(360px, calc(100vw - 24px)); max-height: calc(100vh - 110px); overflow: auto;
  background: #fff; color: #1d2329; border: 1px solid #c8d2dc; border-radius: 8px;
  box-shadow: 0 4px 16px rgba(0,0,0,.15); padding: 12px 16px 16px; font: 14px/1.45 system-ui, sans-serif; }
.round-panel.floating { position: fixed; left: 12px; top: 12px; z-index: 15; max-height: calc(100vh - 24px); }
.round-panel.collapsed { width: auto; padding: 6px; }
.round-panel h2 { margin: 0 0 4px; font-size: 18px; }
.round-panel h3 { margin: 14px 0 6px; font-size: 15px; }
.round-panel button { font: inherit; padding: 4px 10px; border: 1px solid #9aa5af; border-radius: 6px; background: #fff; cursor: pointer; }
.round-panel button:hover { background: #eef2f5; }
.round-toggle { float: right; }
.round-panel.collapsed .round-toggle { float: none; }
.round-kicker { margin: 0; color: #5b6670; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.round-window { margin: 0 0 8px; font-weight: 600; }
.round-window.round-open { color: #1c7a3a; }
.round-window.round-closed { color: #b3261e; }
.round-description, .round-text { white-space: pre-line; overflow-wrap: anywhere; }
.round-how { background: #e8f1fb; border-radius: 6px; padding: 8px 10px; }
.round-why { background: #eef2f5; border-radius: 6px; padding: 8px 10px; }
.round-problem { background: #fdecea; color: #b3261e; border-radius: 6px; padding: 8px 10px; }
.round-who { font-weight: 600; }
.round-note { color: #5b6670; }
.round-privacy summary { cursor: pointer; color: #0b5cad; }
.round-comments, .round-replies { list-style: none; margin: 0; padding: 0; }
.round-comments > li { border-top: 1px solid #d5dbe0; padding: 8px 0; }
.round-replies { margin-left: 14px; border-left: 3px solid #d5dbe0; padding-left: 10px; }
.round-comment header { font-size: 13px; color: #5b6670; }
.round-comment header strong { color: #1d2329; }
.round-comment p { margin: 4px 0; }
.round-badge { margin-left: 6px; padding: 0 6px; border-radius: 8px; background: #e8f1fb; color: #0b5cad; font-size: 11px; }
.round-response { background: #f3f5f7; border-radius: 6px; padding: 6px 8px; margin: 6px 0; }
.round-on { font-size: 12px; color: #5b6670; }
.round-show { font-size: 12px !important; padding: 2px 8px !important; }
.round-more { margin-top: 8px; }
.round-fallback-panel { position: fixed; right: 12px; bottom: 12px; z-index: 20; width: min(360px, calc(100vw - 24px));
  background: #fff; border-radius: 8px; box-shadow: 0 4px 18px rgba(0,0,0,.25); padding: 12px 14px; font: 14px system-ui, sans-serif; }
@media (max-width: 640px) { .round-panel { max-height: 40vh; } .round-panel.floating { top: auto; bottom: 8px; left: 8px; } }
`;

function addStyle() {
  if (typeof document === 'undefined' || document.getElementById(STYLE_ID)) return;
  document.head.append(h('style', { id: STYLE_ID, text: STYLE }));
}
