// The 3D scene of the viewer: tilesets placed in a local frame (three.js Y up, metres, origin
// `viewer.origin`, east +x, north -z), the camera and its controls, picking, lifecycle toggles,
// the render loop (renderer.setAnimationLoop, so that WebXR drives it in a session) and the
// counters the tests and the benchmark read in `window.arviewer.state`.
import * as THREE from 'three';
import { LocalFrame, placeOfRoot } from './frame.js';
import { makeTiles, ownerOf } from './tiles.js';
import { CameraControls } from './controls.js';
import { castAt, featureOfHit, listenForTaps } from './picking.js';
import { Hud } from './hud.js';
import { propertyTable, showPanel, hidePanel, el } from './ui.js';

const EYE_HEIGHT_M = 1.7;
const LIFECYCLES = ['existing', 'planned', 'removed'];
/** Consecutive idle updates (nothing queued, downloading or parsing) before the view counts as loaded. */
const IDLE_UPDATES = 3;
/** Without any model to load, the view counts as loaded after this many idle updates. */
const IDLE_UPDATES_EMPTY = 30;
const SKY = 0xdfe8ef;

/**
 * @typedef {{url: string, assetId?: string, lifecycle?: string, name?: string}} TilesetEntry
 * @typedef {{kind: string, point: number[] | null, [key: string]: any}} Pick
 */

/**
 * Make the viewer in `container` (the canvas fills it).
 * @param {HTMLElement} container
 * @param {{onStatus?: (text: string, kind?: string) => void, headers?: () => Record<string, string>,
 *   state?: Record<string, any>, hud?: {arrow?: HTMLElement|null, bar?: HTMLElement|null, label?: HTMLElement|null},
 *   featurePanel?: boolean}} [options]
 *   `headers`: for tile requests (the bearer token); `state`: `window.arviewer.state`, updated
 *   here; `featurePanel`: show a tapped feature's attributes in the side panel (default true)
 * @returns {Viewer}
 */
export function createViewer(container, options = {}) {
  return new Viewer(container, options);
}

export class Viewer {
  constructor(container, options) {
    this.container = container;
    this.options = options;
    this.onStatus = options.onStatus || (() => {});
    this.headers = options.headers || (() => ({}));
    /** @type {Record<string, any>} */
    this.state = options.state || { tilesets: 0, tilesLoaded: 0, tilesPending: 0, startViewLoadedMs: null, picked: null, errors: [] };
    /** @type {number[] | null} [lon, lat, h] */
    this.origin = null;
    /** @type {number[] | null} [west, south, east, north] degrees */
    this.extent = null;
    /** Ellipsoidal height (m) of the ground the scene stands on. */
    this.groundHeight = null;
    /** @type {LocalFrame | null} */
    this.frame = null;
    /** @type {{entry: TilesetEntry, tiles: any, rootSettled: boolean}[]} */
    this.tilesets = [];
    this.hidden = new Set();
    this.pickHandlers = [];
    this.frameHandlers = [];
    this.needsRender = true;
    this.idleUpdates = 0;
    this.started = false;
    this.viewPlaced = false;
    this.xrCamera = null;

    let resolveReady;
    /** Resolves (with ms since navigation start) when the start view's tiles are loaded. */
    this.ready = new Promise((resolve) => {
      resolveReady = resolve;
    });
    this.resolveReady = resolveReady;

    // renderer, scene, camera
    const renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
    renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    renderer.setClearColor(SKY, 1);
    renderer.outputColorSpace = THREE.SRGBColorSpace;
    renderer.xr.enabled = true;
    renderer.domElement.setAttribute('aria-label', '3D view of the scene: drag to orbit, right-drag to pan, wheel to zoom, WASD or arrow keys to fly');
    renderer.domElement.tabIndex = 0;
    container.append(renderer.domElement);
    this.renderer = renderer;

    this.scene = new THREE.Scene();
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8f80, 2.0));
    const sun = new THREE.DirectionalLight(0xffffff, 1.8);
    sun.position.set(-0.4, 1, 0.5).multiplyScalar(1000); // from the south-west, high
    this.scene.add(sun);
    // Everything in the local frame hangs under `world`: it stays at identity except in an XR
    // session, where it carries the session's placement (the user at street level in VR, the
    // device's position and heading in AR) so that the headset's space stays the local frame.
    this.world = new THREE.Group();
    this.world.name = 'world';
    this.scene.add(this.world);
    this.tileRoot = new THREE.Group();
    this.tileRoot.name = 'tiles';
    this.world.add(this.tileRoot);
    this.overlayGroup = new THREE.Group();
    this.overlayGroup.name = 'overlays';
    this.world.add(this.overlayGroup);
    this.ground = makeGround();
    this.ground.visible = false;
    this.world.add(this.ground);

    this.camera = new THREE.PerspectiveCamera(55, 1, 0.5, 20000);
    this.camera.position.set(150, 120, 150);
    this.scene.add(this.camera);
    this.controls = new CameraControls(this.camera, renderer.domElement, {
      groundY: () => this.groundY,
      changed: () => this.requestRender(),
    });

    const hud = options.hud || {};
    this.hud = new Hud(hud.arrow || null, hud.bar || null, hud.label || null);

    listenForTaps(renderer.domElement, (x, y) => this.tap(x, y));
    const resize = () => this.resize();
    window.addEventListener('resize', resize);
    if (typeof ResizeObserver === 'function') new ResizeObserver(resize).observe(container);
    this.resize();

    this.timer = new THREE.Timer();
    renderer.setAnimationLoop((time, xrFrame) => this.step(xrFrame));
  }

  // -- frames ---------------------------------------------------------------------------

  /** Height of the ground in the local frame (y). */
  get groundY() {
    return this.origin && this.groundHeight !== null ? this.groundHeight - this.origin[2] : 0;
  }

  /** @param {number} e @param {number} n @param {number} u @returns {THREE.Vector3} */
  enuToLocal(e, n, u) {
    return new THREE.Vector3(e, u, -n);
  }

  /** @param {THREE.Vector3} v @returns {number[]} [e, n, u] */
  localToEnu(v) {
    return [v.x, -v.z, v.y];
  }

  /** @param {number} lon @param {number} lat @param {number} h @returns {THREE.Vector3} */
  lonLatHToLocal(lon, lat, h) {
    if (!this.frame) throw new Error('the viewer has no origin yet');
    return this.frame.lonLatHToLocal(lon, lat, h);
  }

  /** @param {THREE.Vector3} v @returns {number[]} [lon, lat, h] */
  localToLonLatH(v) {
    if (!this.frame) throw new Error('the viewer has no origin yet');
    return this.frame.localToLonLatH(v);
  }

  /**
   * Where a place appears in the page: `{x, y}` CSS pixels (client coordinates), or null when
   * it is behind the camera (or the viewer has no origin yet).
   * @param {number} lon @param {number} lat @param {number} h
   */
  screenOf(lon, lat, h) {
    if (!this.frame) return null;
    const camera = this.camera;
    camera.updateMatrixWorld();
    const local = this.world.localToWorld(this.lonLatHToLocal(lon, lat, h));
    if (local.clone().applyMatrix4(camera.matrixWorldInverse).z >= 0) return null;
    const p = local.project(camera);
    const rect = this.renderer.domElement.getBoundingClientRect();
    return { x: rect.left + ((p.x + 1) / 2) * rect.width, y: rect.top + ((1 - p.y) / 2) * rect.height };
  }

  /** @param {number[]} origin [lon, lat, h] */
  setOrigin(origin) {
    this.origin = [...origin];
    this.frame = new LocalFrame(this.origin);
    this.state.origin = [...this.origin];
  }

  // -- tilesets -------------------------------------------------------------------------

  /**
   * Load tilesets; the first one whose root has a place sets `origin`, `extent`, the ground
   * and the start view. Resolves once every root tileset has loaded (or failed); `ready`
   * resolves when the start view's tiles are in.
   * @param {TilesetEntry[]} list
   */
  async loadTilesets(list) {
    const entries = Array.isArray(list) ? list : [];
    if (entries.length) {
      this.onStatus('Loading tiles\u2026');
      await this.addTileset(entries[0]);
      await Promise.all(entries.slice(1).map((entry) => this.addTileset(entry)));
    }
    if (!this.viewPlaced) this.placeStartView();
    this.started = true;
    this.requestRender();
  }

  /** @param {TilesetEntry} entry @returns {Promise<void>} resolves when its root settled */
  addTileset(entry) {
    const record = { entry, tiles: null, rootSettled: false };
    const { tiles } = makeTiles(entry, {
      headers: this.headers(),
      onRootLoaded: (renderer) => {
        if (!this.origin) {
          const place = placeOfRoot(renderer.root);
          if (place) {
            this.setOrigin([place.center[0], place.center[1], place.minHeight]);
            this.extent = place.extent;
            this.groundHeight = groundOf(renderer.root, place.minHeight);
          }
        }
        return this.origin;
      },
    });
    record.tiles = tiles;
    tiles.setCamera(this.camera);
    tiles.setResolutionFromRenderer(this.camera, this.renderer);
    this.tilesets.push(record);
    this.tileRoot.add(tiles.group);
    const state = this.state;
    tiles.addEventListener('load-tileset', () => {
      state.tilesets += 1;
    });
    tiles.addEventListener('load-model', ({ scene, tile }) => {
      state.tilesLoaded += 1;
      const owner = ownerOf(tile, entry);
      scene.userData.owner = owner;
      scene.visible = !this.hidden.has(owner.lifecycle);
      scene.traverse((object) => {
        if (object.isPoints && object.material) object.material.size = Math.max(object.material.size || 0, 2);
      });
      this.requestRender();
    });
    tiles.addEventListener('needs-update', () => this.requestRender());
    tiles.addEventListener('tile-visibility-change', () => this.requestRender());
    tiles.addEventListener('load-error', (event) => {
      const what = event.tile ? 'Some tiles' : `The tileset ${entry.name || entry.url}`;
      this.onStatus(`${what} could not be loaded: ${describeLoadError(event.error)}`, 'error');
      const message = `${what} could not be loaded.`;
      if (Array.isArray(state.errors) && !state.errors.includes(message)) state.errors.push(message);
    });
    return new Promise((resolve) => {
      const settle = () => {
        if (record.rootSettled) return;
        record.rootSettled = true;
        if (this.origin && !this.viewPlaced) this.placeStartView();
        resolve();
      };
      tiles.addEventListener('load-root-tileset', settle);
      tiles.addEventListener('load-error', ({ tile }) => {
        if (!tile) settle();
      });
      this.requestRender(); // the next update() starts loading the root
    });
  }

  /** Show or hide the assets of one lifecycle (also those whose tiles load later). */
  setLifecycleVisible(lifecycle, visible) {
    if (!LIFECYCLES.includes(lifecycle)) return;
    if (visible) this.hidden.delete(lifecycle);
    else this.hidden.add(lifecycle);
    for (const { tiles } of this.tilesets) {
      tiles.forEachLoadedModel((scene) => {
        const owner = scene.userData.owner;
        if (owner) scene.visible = !this.hidden.has(owner.lifecycle);
      });
    }
    this.requestRender();
  }

  /** The lifecycles of the loaded assets, with how many assets each. */
  lifecycles() {
    const seen = new Map();
    for (const { tiles } of this.tilesets) {
      tiles.forEachLoadedModel((scene) => {
        const owner = scene.userData.owner;
        if (owner) seen.set(owner.assetId || owner.name, owner.lifecycle);
      });
    }
    const counts = { existing: 0, planned: 0, removed: 0 };
    for (const lifecycle of seen.values()) if (lifecycle in counts) counts[lifecycle] += 1;
    return counts;
  }

  // -- camera ---------------------------------------------------------------------------

  /** The scene's extent as a local box at ground height (x east-west, z north-south). */
  extentBox() {
    const box = new THREE.Box3();
    if (!this.frame || !this.extent) {
      box.setFromCenterAndSize(new THREE.Vector3(0, this.groundY, 0), new THREE.Vector3(60, 0, 60));
      return box;
    }
    const [w, s, e, n] = this.extent;
    for (const [lon, lat] of [[w, s], [w, n], [e, s], [e, n]]) box.expandByPoint(this.lonLatHToLocal(lon, lat, this.groundHeight));
    box.min.y = box.max.y = this.groundY;
    return box;
  }

  /** The start view: the whole extent seen from the south-east, somewhat above. */
  overviewPose() {
    const box = this.extentBox();
    const center = box.getCenter(new THREE.Vector3());
    const size = box.getSize(new THREE.Vector3());
    const radius = Math.max(Math.hypot(size.x, size.z) / 2, 25);
    const halfFov = (this.camera.fov * Math.PI) / 360;
    const fit = Math.min(halfFov, Math.atan(Math.tan(halfFov) * this.camera.aspect));
    const distance = (radius / Math.sin(fit)) * 1.05;
    const elevation = (35 * Math.PI) / 180;
    const direction = new THREE.Vector3(Math.SQRT1_2 * Math.cos(elevation), Math.sin(elevation), Math.SQRT1_2 * Math.cos(elevation));
    return { position: center.clone().addScaledVector(direction, distance), target: center };
  }

  placeStartView() {
    this.viewPlaced = true;
    const { position, target } = this.overviewPose();
    this.controls.set(position, target);
    if (this.origin) {
      this.ground.position.y = this.groundY - 0.05;
      this.ground.visible = true;
    }
  }

  /** Back to the start view (a flight). */
  overview() {
    const { position, target } = this.overviewPose();
    this.controls.flyTo(position, target);
  }

  /**
   * Fly to look at a place from about 45 m, from the direction the camera looks from now,
   * somewhat above it.
   * @param {number} lon @param {number} lat @param {number} h
   */
  flyTo(lon, lat, h) {
    if (!this.frame) return;
    const target = this.lonLatHToLocal(lon, lat, h);
    const from = this.camera.position.clone().sub(this.controls.target).setY(0);
    if (from.lengthSq() < 1e-6) from.set(1, 0, 1);
    from.normalize();
    const elevation = (50 * Math.PI) / 180;
    const distance = 45;
    const position = target.clone()
      .addScaledVector(from, distance * Math.cos(elevation))
      .add(new THREE.Vector3(0, distance * Math.sin(elevation), 0)); // prettier-ignore
    this.controls.flyTo(position, target);
  }

  /** The eye 1.7 m above the ground at the scene's centre, looking north. */
  streetLevel() {
    const center = this.extentBox().getCenter(new THREE.Vector3());
    const eye = new THREE.Vector3(center.x, this.groundY + EYE_HEIGHT_M, center.z);
    this.controls.flyTo(eye, eye.clone().add(new THREE.Vector3(0, 0, -8)));
  }

  // -- picking --------------------------------------------------------------------------

  /**
   * Call `handler(pick, {panel})` for every tap: a feature, an overlay object or the ground
   * (`panel`: the side panel's body when the core opened it for a feature, else null).
   * @param {(pick: Pick, context: {panel: HTMLElement|null}) => void} handler
   * @returns {() => void} stops calling it
   */
  onPick(handler) {
    this.pickHandlers.push(handler);
    return () => {
      this.pickHandlers = this.pickHandlers.filter((h) => h !== handler);
    };
  }

  /** What lies under a page point (CSS px); also records and reports it. */
  tap(x, y) {
    const pick = this.pickAt(x, y);
    this.state.picked = pick;
    let panel = null;
    if (pick.kind === 'feature' && this.options.featurePanel !== false) panel = this.showFeature(pick);
    else if (pick.kind === 'ground') hidePanel();
    for (const handler of this.pickHandlers) {
      try {
        handler(pick, { panel });
      } catch (error) {
        console.warn(`a pick handler failed: ${error.message}`);
      }
    }
    return pick;
  }

  /** @param {number} x @param {number} y @returns {Pick} */
  pickAt(x, y) {
    const found = castAt({
      camera: this.camera,
      canvas: this.renderer.domElement,
      overlayGroup: this.overlayGroup,
      tileGroups: this.tilesets.map((t) => t.tiles.group),
      groundY: this.groundY,
    }, x, y); // prettier-ignore
    const where = (v) => (v && this.frame ? this.localToLonLatH(this.world.worldToLocal(v.clone())) : null);
    if (found.kind === 'overlay') {
      return { ...found.pick, point: found.pick.point || where(found.hit.point) };
    }
    if (found.kind === 'tile') {
      const hit = found.hit;
      let owner = null;
      for (let o = hit.object; o && !owner; o = o.parent) owner = o.userData.owner || null;
      const feature = featureOfHit(hit);
      const properties = feature ? feature.properties : {};
      const id = properties.id;
      return {
        kind: 'feature',
        assetId: owner ? owner.assetId : null,
        assetName: owner ? owner.name : null,
        lifecycle: owner ? owner.lifecycle : null,
        featureId: typeof id === 'string' || typeof id === 'number' ? id : feature ? feature.featureIndex : null,
        featureIndex: feature ? feature.featureIndex : null,
        properties,
        point: where(hit.point),
      };
    }
    return { kind: 'ground', point: where(found.point) };
  }

  /** The side panel with a feature's attributes; returns its body. @param {Pick} pick */
  showFeature(pick) {
    const body = el('div');
    const facts = [pick.assetName, pick.lifecycle].filter(Boolean).join(' \u00b7 ');
    if (facts) body.append(el('p', { class: 'muted', text: facts }));
    if (Object.keys(pick.properties).length) body.append(propertyTable(pick.properties));
    else body.append(el('p', { text: 'No attributes are stored for this object.' }));
    if (pick.point) {
      const [lon, lat, h] = pick.point;
      body.append(el('p', { class: 'muted small', text: `Tapped at ${lon.toFixed(6)}, ${lat.toFixed(6)}, ${h.toFixed(2)} m (ellipsoidal)` }));
    }
    const title = pick.properties.name || pick.featureId || pick.assetName || 'Object';
    return showPanel(String(title), body);
  }

  // -- the frame loop -------------------------------------------------------------------

  /** Ask for a new frame to be drawn (overlays call this when they change). */
  requestRender() {
    this.needsRender = true;
  }

  /** Run `handler(seconds)` before every frame. @param {(dt: number) => void} handler */
  onFrame(handler) {
    this.frameHandlers.push(handler);
  }

  resize() {
    const width = Math.max(this.container.clientWidth, 1);
    const height = Math.max(this.container.clientHeight, 1);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    if (!this.renderer.xr.isPresenting) this.renderer.setSize(width, height);
    this.requestRender();
  }

  step() {
    this.timer.update();
    const dt = Math.min(this.timer.getDelta(), 0.1);
    const renderer = this.renderer;
    const presenting = renderer.xr.isPresenting;
    if (!presenting) {
      this.controls.update(dt);
      this.fitClipping();
    }
    for (const handler of this.frameHandlers) handler(dt);
    const xrCamera = presenting ? renderer.xr.getCamera() : null;
    let pending = 0;
    for (const { tiles } of this.tilesets) {
      if (xrCamera) {
        if (!tiles.hasCamera(xrCamera)) tiles.setCamera(xrCamera);
        const eye = xrCamera.cameras && xrCamera.cameras[0];
        if (eye && eye.viewport && eye.viewport.z > 0) tiles.setResolution(xrCamera, eye.viewport.z, eye.viewport.w);
        else tiles.setResolutionFromRenderer(xrCamera, renderer);
        if (tiles.hasCamera(this.camera)) tiles.deleteCamera(this.camera);
      } else {
        if (!tiles.hasCamera(this.camera)) tiles.setCamera(this.camera);
        tiles.setResolutionFromRenderer(this.camera, renderer);
      }
      this.camera.updateMatrixWorld();
      tiles.update();
      pending += tiles.stats.queued + tiles.stats.downloading + tiles.stats.parsing;
    }
    this.state.tilesPending = pending;
    this.checkReady();
    if (this.needsRender || presenting) {
      this.needsRender = false;
      renderer.render(this.scene, this.camera);
      const distance = this.camera.position.distanceTo(this.controls.target);
      this.hud.update(this.camera, distance, renderer.domElement.clientHeight);
    }
  }

  /** Near and far planes that suit the height above the ground (depth precision). */
  fitClipping() {
    const camera = this.camera;
    const above = Math.max(0.5, camera.position.y - this.groundY);
    const distance = camera.position.distanceTo(this.controls.target);
    const near = Math.min(10, Math.max(0.05, Math.min(above, distance) / 60));
    const far = Math.max(5000, distance * 50);
    if (Math.abs(camera.near - near) / near > 0.05 || camera.far !== far) {
      camera.near = near;
      camera.far = far;
      camera.updateProjectionMatrix();
    }
  }

  /** `ready` resolves on the first update after the start was placed with nothing left to load. */
  checkReady() {
    if (this.state.startViewLoadedMs !== null || !this.started) return;
    if (!this.tilesets.every((t) => t.rootSettled)) return;
    const busy = this.tilesets.some(({ tiles }) =>
      tiles.isLoading || tiles.downloadQueue.running || tiles.parseQueue.running || tiles.processNodeQueue.running,
    ) || this.state.tilesPending > 0; // prettier-ignore
    this.idleUpdates = busy ? 0 : this.idleUpdates + 1;
    const enough = this.state.tilesLoaded > 0 ? IDLE_UPDATES : IDLE_UPDATES_EMPTY;
    if (this.idleUpdates < enough) return;
    const ms = performance.now();
    this.state.startViewLoadedMs = ms;
    this.onStatus(this.state.tilesLoaded ? '' : 'Nothing to show here (no tiles).');
    this.resolveReady(ms);
  }
}

/** A faint ground plane with a 10 m grid, seen through from below (buried cables stay visible). */
function makeGround() {
  const group = new THREE.Group();
  group.name = 'ground';
  const plane = new THREE.Mesh(
    new THREE.CircleGeometry(3000, 64).rotateX(-Math.PI / 2),
    new THREE.MeshBasicMaterial({ color: 0xb9c4ae, transparent: true, opacity: 0.45, depthWrite: false }),
  );
  plane.renderOrder = -1;
  const grid = new THREE.GridHelper(2000, 200, 0x98a48c, 0xa9b49d);
  grid.material.transparent = true;
  grid.material.opacity = 0.35;
  grid.material.depthWrite = false;
  grid.position.y = 0.01;
  group.add(plane, grid);
  return group;
}

/**
 * The ground height of a tileset: for a scene tileset, the median of its children's lowest
 * heights (objects stand on the ground; a buried cable is the exception), else the lowest.
 */
function groundOf(root, minHeight) {
  const lows = (root.children || [])
    .map((child) => child.boundingVolume && child.boundingVolume.region && child.boundingVolume.region[4])
    .filter((h) => Number.isFinite(h))
    .sort((a, b) => a - b);
  if (!lows.length) return minHeight;
  return lows[Math.floor((lows.length - 1) / 2)];
}

function describeLoadError(error) {
  const text = error && error.message ? error.message : String(error || 'unknown error');
  const status = text.match(/status (\d{3})/);
  if (status && status[1] === '401') return 'the token is not valid (expired or revoked).';
  if (status && status[1] === '403') return 'this token may not see it.';
  if (status && status[1] === '404') return 'it does not exist (or is not visible with this token).';
  return text;
}
