// The live part of the viewer: follows /api/v1/live in the viewer's ENU frame, shows the items
// as markers, opens panels for tapped markers, and replays the last 24 hours on a slider.
import { LiveClient, LiveSocket } from './client.js';
import { MarkerLayer } from './markers.js';
import { History } from './history.js';
import { Timeline } from './timeline.js';
import { Rounds } from './rounds.js';
import { el, showAlertPanel, showCommentPanel, showInspectionPanel, showPlacePanel, showSensorPanel } from './panels.js';
import { openCommentForm } from '../comments.js';

/** The layers the viewer follows by default. */
export const DEFAULT_LAYERS = ['sensors', 'alerts', 'inspections', 'annotations', 'parking'];
/** Without an extent, a circle of this radius (m) around the origin. */
const DEFAULT_RADIUS_M = 3000;
const RULES_REFRESH_MS = 5 * 60_000;
const COMMENTS_REFRESH_MS = 30_000;
const OVERLAY_KINDS = new Set(['sensor', 'parking', 'alert', 'inspection', 'comment']);

/**
 * @typedef {object} LiveView
 * @property {() => void} close stop following; remove markers and controls
 * @property {(holdMs?: number) => void} dropConnection test hook: close the socket as a network drop
 *   would, and stay away at least `holdMs`
 * @property {(pick: any) => boolean} handlePick open the panel of an overlay pick (true if it was one)
 * @property {(pick: any, container?: HTMLElement) => Promise<HTMLElement|null>} onFeaturePicked
 *   "Comment" buttons for a tapped feature of an asset in an open round (appended to
 *   `container` when given), or null
 * @property {(pick: {point: number[]}) => boolean} onGroundPicked in a round, the comment form at
 *   the tapped place (true when it opened)
 */

/**
 * Start the live overlay.
 * @param {any} viewer the core's Viewer (`origin`, `overlayGroup`, `enuToLocal`, `onPick`, ...)
 * @param {import('../api.js').Api} api
 * @param {{layers?: string[], ui?: any, roundId?: string|null,
 *   area?: {bbox: number[]} | {center: number[], radius_m: number}, container?: HTMLElement,
 *   timeline?: boolean}} [options]
 *   `area`: what to follow (default `viewer.extent` as a bbox when the core gives one, else a
 *   circle of 3 km around the origin).
 * @returns {LiveView}
 */
export function startLive(viewer, api, options = {}) {
  const ui = options.ui || null;
  const layers = options.layers || DEFAULT_LAYERS;
  const roundId = options.roundId || null;
  const container = options.container || document.body;
  const state = arviewerState();
  const markers = new MarkerLayer(viewer, { overlays: state.overlays });
  const history = new History(api);
  const rounds = new Rounds(api, ui);
  let rules = [];
  let closed = false;
  const timers = [];
  const banner = el('div', { class: 'live-banner', role: 'alert', hidden: true });
  Object.assign(banner.style, {
    position: 'fixed', top: '12px', left: '50%', transform: 'translateX(-50%)', zIndex: '30',
    background: '#fff3bf', color: '#5c3c00', padding: '8px 12px', borderRadius: '6px',
    font: '14px system-ui, sans-serif', boxShadow: '0 2px 8px rgba(0,0,0,.2)', maxWidth: '90vw',
  }); // prettier-ignore
  container.append(banner);
  const showError = (message) => {
    banner.textContent = message;
    banner.hidden = false;
    if (!state.errors.includes(message)) state.errors.push(message);
  };

  const loadRules = () =>
    api.get('/api/v1/rules').then(
      (reply) => {
        rules = reply.rules || [];
        markers.setRules(rules);
      },
      () => {},
    );
  const canRead = api.can('read');
  if (canRead) {
    loadRules();
    timers.push(setInterval(loadRules, RULES_REFRESH_MS));
  }

  let timeline = null;
  if (options.timeline !== false && canRead && (layers.includes('sensors') || layers.includes('parking'))) {
    timeline = new Timeline({ container, history, markers });
  }

  const context = {
    api, ui, history, markers,
    rules: () => rules,
    replayTime: () => (timeline ? timeline.time : null),
  }; // prettier-ignore

  // -- the socket ----------------------------------------------------------------------
  const client = new LiveClient({ received: state.received });
  let socket = null;
  const publish = () => {
    const s = client.state;
    Object.assign(state.live, {
      connected: s.connected, session: s.session, lastSeq: s.lastSeq, reconnects: s.reconnects,
      recovered: s.recovered,
    }); // prettier-ignore
    if (timeline) timeline.element.dataset.live = s.connected ? 'connected' : 'disconnected';
  };
  const onEffects = (effects) => {
    for (const effect of effects) {
      if (effect.type === 'items') {
        markers.apply(effect.upserts, effect.removes);
        for (const item of effect.upserts) {
          if ((item.layer === 'sensors' || item.layer === 'parking') && item.data && item.data.sensor) {
            history.add(item.data.sensor, item.kind, Date.parse(item.time), item.data.value);
          }
        }
      } else if (effect.type === 'enter' && effect.item) {
        markers.apply([effect.item], []);
      } else if (effect.type === 'stop') {
        showError(effect.message);
      } else if (effect.type === 'error') {
        console.warn(`live: ${effect.code}: ${effect.message}`);
      }
    }
    publish();
  };

  const subscription = () => ({
    id: 'view',
    area: options.area || areaOf(viewer),
    layers,
    frame: { type: 'enu', origin: [...viewer.origin] },
  });

  const canFollow = api.can('subscribe_live');
  whenOriginKnown(viewer, () => closed).then((ready) => {
    if (!ready || closed) return;
    if (canFollow) {
      client.subscribe(subscription());
      const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
      socket = new LiveSocket(client, {
        base: `${scheme}://${window.location.host}/api/v1/live`,
        token: api.token,
        onEffects,
        onHandshakeFailed: () =>
          api.get('/api/v1/tokens/current').then(
            () => true,
            (error) => error.status !== 401,
          ),
      });
      socket.start();
    } else if (roundId && api.can('read_comments')) {
      refreshComments();
      timers.push(setInterval(refreshComments, COMMENTS_REFRESH_MS));
    }
  });

  // A page whose token cannot follow the overlay (a resident's) polls its round's comments.
  let commentKeys = new Set();
  function refreshComments() {
    if (!roundId || closed || canFollow) return;
    const toEnu = (lon, lat, h) => {
      const local = viewer.lonLatHToLocal(lon, lat, h ?? viewer.origin[2]);
      const enu = viewer.localToEnu(local);
      return Array.isArray(enu) ? enu : [enu.x, enu.y, enu.z];
    };
    rounds.commentItems(roundId, toEnu).then(
      (items) => {
        const keys = new Set(items.map((i) => i.key));
        markers.apply(items, [...commentKeys].filter((k) => !keys.has(k)));
        commentKeys = keys;
      },
      (error) => console.warn(`comments: ${error.message}`),
    );
  }

  // -- picks ---------------------------------------------------------------------------
  /** @param {any} pick */
  function handlePick(pick) {
    if (!pick || !OVERLAY_KINDS.has(pick.kind)) return false;
    const item = markers.item(pick.key) || null;
    if (pick.kind === 'parking' && pick.place) showPlacePanel(context, pick, item);
    else if (pick.kind === 'sensor' || pick.kind === 'parking') showSensorPanel(context, pick);
    else if (pick.kind === 'alert') showAlertPanel(context, { ...pick, status: item?.data?.status ?? pick.status });
    else if (pick.kind === 'inspection') showInspectionPanel(context, pick, item);
    else if (pick.kind === 'comment') showCommentPanel(context, pick, item);
    return true;
  }
  let unsubscribePick = null;
  if (typeof viewer.onPick === 'function') {
    const result = viewer.onPick((pick) => {
      if (!closed) handlePick(pick);
    });
    if (typeof result === 'function') unsubscribePick = result;
  }

  async function onFeaturePicked(pick, target) {
    if (!pick || pick.kind !== 'feature' || !pick.assetId) return null;
    const buttons = await rounds.commentButtons(pick, { onSent: refreshComments });
    if (buttons && target) target.append(buttons);
    return buttons;
  }

  function onGroundPicked(pick) {
    if (!roundId || !pick || !Array.isArray(pick.point) || !api.can('comment')) return false;
    openCommentForm(api, ui, {
      roundId,
      place: { point: pick.point },
      title: 'Comment at this place',
      onSent: refreshComments,
    });
    return true;
  }

  publish();
  return {
    client,
    markers,
    history,
    get timeline() {
      return timeline;
    },
    handlePick,
    onFeaturePicked,
    onGroundPicked,
    dropConnection(holdMs = 0) {
      if (socket) socket.dropConnection(holdMs);
    },
    close() {
      closed = true;
      if (socket) socket.close();
      for (const timer of timers) clearInterval(timer);
      if (unsubscribePick) unsubscribePick();
      if (timeline) timeline.dispose();
      banner.remove();
      markers.dispose();
      client.state.connected = false;
      publish();
    },
  };
}

/** `window.arviewer.state`, with the parts this module writes (made when missing). */
function arviewerState() {
  const root = (window.arviewer = window.arviewer || {});
  const state = (root.state = root.state || {});
  state.live = state.live || { connected: false, session: null, lastSeq: 0, reconnects: 0, recovered: null };
  state.overlays = state.overlays || {};
  state.received = state.received || {};
  state.errors = state.errors || [];
  return state;
}

/** The area to follow: the scene's extent when the core knows it, else a circle. */
function areaOf(viewer) {
  const extent = viewer.extent;
  if (Array.isArray(extent) && extent.length >= 4 && extent.every(Number.isFinite)) {
    const [w, s, e, n] = extent;
    const m = 0.001; // ~100 m around it: sensors at the edge
    return { bbox: [Math.max(-180, w - m), Math.max(-90, s - m), Math.min(180, e + m), Math.min(90, n + m)] };
  }
  return { center: [viewer.origin[0], viewer.origin[1]], radius_m: DEFAULT_RADIUS_M };
}

/** Resolves true once `viewer.origin` is known (false if `stopped()` first). */
function whenOriginKnown(viewer, stopped) {
  return new Promise((resolve) => {
    const check = () => {
      if (stopped()) resolve(false);
      else if (Array.isArray(viewer.origin) && viewer.origin.length >= 3) resolve(true);
      else setTimeout(check, 100);
    };
    check();
  });
}
