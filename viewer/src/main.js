// The viewer page: reads the token and what to show, loads the tilesets into the scene, starts
// the live overlay (or the round page for residents), and exposes window.arviewer.
import { Api, ApiError, tokenFromPage } from './api.js';
import { Viewer } from './core/viewer.js';
import { installXR } from './core/xr.js';
import { hidePanel, propertyTable, setStatus, showPanel } from './core/ui.js';
import { startLive } from './live/index.js';
import { startRound } from './round.js';

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
let markReady;
const ready = new Promise((resolve) => { markReady = resolve; });
window.arviewer = { viewer: null, live: null, ready, state };

const ui = { showPanel, hidePanel, container: document.getElementById('side') || document.body };
const $ = (id) => document.getElementById(id);

/** What the address asks for: a layer (default `demo`), one asset, or a round. */
function target() {
  const query = new URLSearchParams(window.location.search);
  if (query.get('round')) return { mode: 'round', id: query.get('round') };
  if (query.get('asset')) return { mode: 'asset', id: query.get('asset') };
  return { mode: 'layer', id: query.get('layer') || 'demo' };
}

function fail(message) {
  if (!state.errors.includes(message)) state.errors.push(message);
  setStatus(message, true);
}

/** Ask for a token when the address brought none (public assets only without one). */
function askForToken() {
  const box = $('token-box');
  box.hidden = false;
  box.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    sessionStorage.setItem('arserver-token', value);
    window.location.reload();
  });
}

function showFeature(pick) {
  const body = document.createElement('div');
  const where = document.createElement('p');
  where.className = 'muted';
  const [lon, lat, h] = pick.point;
  where.textContent = `${pick.assetName || pick.assetId || ''} \u00b7 ${lon.toFixed(6)}, ${lat.toFixed(6)}, h ${h.toFixed(1)} m`;
  body.append(where);
  if (Object.keys(pick.properties).length) body.append(propertyTable(pick.properties));
  else body.append(Object.assign(document.createElement('p'), { textContent: 'No attributes stored for this object.' }));
  showPanel(pick.featureId !== null ? `Feature ${pick.featureId}` : 'Object', body);
  return body;
}

function updateCompass(viewer) {
  const arrow = $('north-arrow');
  const bar = $('scale-bar');
  viewer.onFrame(() => {
    arrow.style.transform = `rotate(${-viewer.heading()}deg)`;
    const { metres, pixels } = viewer.scaleBar();
    bar.style.width = `${Math.round(pixels)}px`;
    bar.textContent = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
  });
}

async function main() {
  const token = tokenFromPage();
  const api = new Api(token);
  const wanted = target();
  state.mode = wanted.mode;
  $('title').textContent =
    wanted.mode === 'layer' ? `Layer ${wanted.id}` : wanted.mode === 'asset' ? 'Asset' : 'Participation round';
  if (!token && wanted.mode !== 'round') askForToken();
  try {
    await api.whoami();
  } catch (error) {
    // a resident's round page explains a refused link itself (round.js)
    if (error instanceof ApiError && error.status === 401 && wanted.mode !== 'round') {
      fail('This token is not valid (expired or revoked). Ask for a new link or type another token.');
      askForToken();
    }
  }
  if (api.can('change_assets')) $('assets-link').hidden = false;

  const viewer = new Viewer($('scene'), api, state);
  window.arviewer.viewer = viewer;
  updateCompass(viewer);
  viewer.onSettled = () => {
    if (state.startViewLoadedMs === null) {
      state.startViewLoadedMs = performance.now();
      setStatus(`${state.tilesLoaded} tiles loaded in ${(state.startViewLoadedMs / 1000).toFixed(1)} s`);
      markReady(state.startViewLoadedMs);
    }
  };

  let tilesets;
  let round = null;
  if (wanted.mode === 'round') {
    round = await startRound(viewer, api, wanted.id, ui);
    tilesets = round.tilesets;
    $('lifecycle').hidden = true;
  } else if (wanted.mode === 'asset') {
    tilesets = [{ url: `/tiles/${encodeURIComponent(wanted.id)}/tileset.json`, assetId: wanted.id }];
    api.get(`/api/v1/assets/${encodeURIComponent(wanted.id)}`).then(
      (asset) => {
        $('title').textContent = `Asset ${asset.name}`;
        tilesets[0].lifecycle = asset.lifecycle;
        tilesets[0].name = asset.name;
      },
      (error) => fail(error.message),
    );
  } else {
    tilesets = [{ url: `/tiles/scene/${encodeURIComponent(wanted.id)}/tileset.json` }];
  }
  setStatus('Loading tiles\u2026');
  await viewer.loadTilesets(tilesets);
  if (round && round.round && Array.isArray(round.round.bbox)) {
    viewer.extent = round.round.bbox; // frame the round's area, not only its objects
    viewer.overview();
  }
  if (!tilesets.length || !state.tilesets) viewer.onSettled();

  for (const box of document.querySelectorAll('#lifecycle input')) {
    box.addEventListener('change', () => viewer.setLifecycleVisible(box.value, box.checked));
  }
  $('overview').addEventListener('click', () => viewer.overview());
  $('street').addEventListener('click', () => viewer.streetLevel());
  installXR(viewer, { vr: $('enter-vr'), ar: $('enter-ar'), note: $('xr-note') }, state);

  if (round) {
    viewer.onPick(round.onPick);
    return;
  }
  if (api.can('subscribe_live')) {
    const live = startLive(viewer, api, { ui, container: document.body });
    window.arviewer.live = live;
    viewer.onPick(async (pick) => {
      if (live.handlePick(pick)) return;
      if (pick.kind === 'feature') {
        const body = showFeature(pick);
        await live.onFeaturePicked(pick, body);
      } else {
        hidePanel();
      }
    });
  } else {
    viewer.onPick((pick) => (pick.kind === 'feature' ? showFeature(pick) : hidePanel()));
  }
}

main().catch((error) => fail(error instanceof ApiError ? error.message : `The viewer could not start: ${error.message}`));
