// The viewer page: reads the token and what to show (a layer, one asset or a participation
// round), loads the tilesets into the scene, starts the live overlay (not in round mode), and
// exposes `window.arviewer` for the browser tests and the benchmark.
import { Api, ApiError, tokenFromPage } from './api.js';
import { createViewer } from './core/scene.js';
import { setupXR } from './core/immersive.js';
import { askForToken, setStatus, showError, ui } from './core/ui.js';
import { startLive } from './live/index.js';
import { startRound } from './round.js';

const $ = (id) => document.getElementById(id);

const state = {
  mode: 'layer',
  origin: null,
  tilesets: 0,
  tilesLoaded: 0,
  tilesPending: 0,
  startViewLoadedMs: null,
  picked: null,
  live: { connected: false, session: null, lastSeq: 0, reconnects: 0, recovered: null },
  overlays: {},
  received: {},
  xr: { supported: { vr: false, ar: false }, session: null },
  errors: [],
};
let resolveReady;
const ready = new Promise((resolve) => {
  resolveReady = resolve;
});
window.arviewer = { viewer: null, live: null, ready, state };

/** What the address asks for: `?round=ID`, `?asset=ID`, else `?layer=NAME` (default demo). */
function wanted() {
  const query = new URLSearchParams(window.location.search);
  if (query.get('round')) return { mode: 'round', id: query.get('round') };
  if (query.get('asset')) return { mode: 'asset', id: query.get('asset') };
  return { mode: 'layer', id: query.get('layer') || 'demo' };
}

/** Who the token is; null when unknown (no token, or a server without the endpoint). */
async function identify(api) {
  if (!api.token) return null;
  try {
    return await api.whoami();
  } catch (error) {
    api.lastStatus = error instanceof ApiError ? error.status : 0;
    if (error instanceof ApiError && error.status === 401) {
      showError('This token is not valid (expired or revoked). Ask for a new link, or open the page again and type another token.');
    } else if (!(error instanceof ApiError && error.status === 404)) {
      showError(`Who this token is could not be checked: ${error.message}`);
    }
    return null;
  }
}

function setTitle(text) {
  $('scene-name').textContent = text;
  document.title = `${text} \u00b7 arserver viewer`;
}

async function main() {
  const target = wanted();
  state.mode = target.mode;
  let token = tokenFromPage();
  if (!token && target.mode !== 'round') token = await askForToken();
  const api = new Api(token);
  let identity = await identify(api);
  if (!identity && api.lastStatus === 401 && target.mode !== 'round') {
    // a revoked or expired token: forget it in this tab and ask for another
    sessionStorage.removeItem('arserver-token');
    api.token = await askForToken();
    identity = await identify(api);
  }
  if (identity && api.can('change_assets')) $('assets-link').hidden = false;

  const viewer = createViewer($('scene'), {
    onStatus: (text, kind) => (kind === 'error' ? showError(text) : setStatus(text)),
    headers: () => api.headers(),
    state,
    hud: { arrow: $('north-arrow'), bar: $('scale-bar'), label: $('scale-label') },
  });
  window.arviewer.viewer = viewer;
  viewer.ready.then(resolveReady);

  for (const box of document.querySelectorAll('#lifecycle input[type=checkbox]')) {
    box.addEventListener('change', () => viewer.setLifecycleVisible(box.value, box.checked));
  }
  $('overview').addEventListener('click', () => viewer.overview());
  $('street-level').addEventListener('click', () => viewer.streetLevel());
  setupXR(viewer, { vr: $('enter-vr'), ar: $('enter-ar'), note: $('xr-note') }, state.xr);

  let tilesets = [];
  let roundArea = null;
  if (target.mode === 'round') {
    setTitle('Participation round');
    $('lifecycle').hidden = true;
    const round = await startRound(viewer, api, target.id, ui);
    if (round.round && round.round.title) setTitle(round.round.title);
    viewer.onPick(round.onPick);
    tilesets = round.tilesets || [];
    if (round.round && Array.isArray(round.round.bbox) && round.round.bbox.length === 4) roundArea = round.round.bbox;
  } else if (target.mode === 'asset') {
    setTitle(`Asset ${target.id}`);
    const entry = { url: `/tiles/${encodeURIComponent(target.id)}/tileset.json`, assetId: target.id };
    try {
      const asset = await api.get(`/api/v1/assets/${encodeURIComponent(target.id)}`);
      entry.name = asset.name;
      entry.lifecycle = asset.lifecycle;
      setTitle(asset.name);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) showError('There is no such asset (or this token may not see it).');
      else showError(`The asset could not be read: ${error.message}`);
    }
    tilesets = [entry];
  } else {
    setTitle(`Layer ${target.id}`);
    tilesets = [{ url: `/tiles/scene/${encodeURIComponent(target.id)}/tileset.json`, name: target.id }];
  }

  if (target.mode !== 'round' && api.can('subscribe_live')) {
    // the live module opens the panels of its own markers; a feature's panel gets its buttons
    const live = startLive(viewer, api, { ui, container: document.body });
    window.arviewer.live = live;
    viewer.onPick((pick, context) => {
      if (pick.kind === 'feature' && context.panel && live.onFeaturePicked) {
        live.onFeaturePicked(pick, context.panel).catch((error) => console.warn(`comment buttons: ${error.message}`));
      }
    });
  }
  await viewer.loadTilesets(tilesets);
  if (roundArea && viewer.frame) {
    viewer.extent = roundArea; // a round page shows the round's whole area, not only its objects
    viewer.overview();
  }
}

main().catch((error) => {
  showError(`The viewer could not start: ${error.message}`);
  console.warn(error);
});

