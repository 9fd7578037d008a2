// The 3D scene: tilesets placed in a local east/north/up frame (three.js Y up, metres), the
// camera and its controls, picking, and the counters the tests and the benchmark read.
//
// Frame: the local origin is `viewer.origin` ([lon, lat, h], WGS 84 degrees and ellipsoidal
// metres): the centre of the first tileset's extent, at the ground (the median of its assets'
// lowest heights). East is +x, up +y,
// north -z. Tiles are Earth-centred; their group carries the ECEF -> local transform, computed
// in double precision, so vertex coordinates on the GPU stay small (no float32 jitter).
import {
  Color, HemisphereLight, DirectionalLight, Group, Matrix4, Mesh, PerspectiveCamera,
  Plane, Raycaster, Scene, Sphere, Timer, Triangle, Vector2, Vector3, WebGLRenderer,
} from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { TilesRenderer } from '3d-tiles-renderer';
import { GLTFExtensionsPlugin } from '3d-tiles-renderer/plugins';
import { enuFrame, fromEcef, toEcef } from './geo.js';

const LIFECYCLES = ['existing', 'planned', 'removed'];
const EYE_HEIGHT_M = 1.7;

/** The asset a tile belongs to: the `extras` of the nearest scene child above it. */
function assetOf(tile, fallback) {
  for (let t = tile; t; t = t.parent) {
    if (t.extras && t.extras.asset) return t.extras;
  }
  return fallback;
}

/** Where on the mesh a raycast hit lies, as the metadata extension wants it. */
function barycoordOf(hit) {
  const { object, face } = hit;
  const position = object.geometry.getAttribute('position');
  const triangle = new Triangle();
  triangle.setFromAttributeAndIndices(position, face.a, face.b, face.c);
  triangle.a.applyMatrix4(object.matrixWorld);
  triangle.b.applyMatrix4(object.matrixWorld);
  triangle.c.applyMatrix4(object.matrixWorld);
  return triangle.getBarycoord(hit.point, new Vector3());
}

/** The feature id and named attributes of a hit on a mesh with feature metadata, or null. */
function featureOf(hit) {
  const { meshFeatures, structuralMetadata } = hit.object.userData;
  if (!meshFeatures || !structuralMetadata || hit.faceIndex === undefined) return null;
  const features = meshFeatures.getFeatures(hit.faceIndex, barycoordOf(hit));
  const info = meshFeatures.getFeatureInfo();
  const tables = info.map((i) => i.propertyTable);
  if (features[0] === null || features[0] === undefined) return null;
  const data = structuralMetadata.getPropertyTableData(tables, features)[0] || {};
  const className = structuralMetadata.getPropertyTableInfo(tables)[0]?.className;
  const definitions = structuralMetadata.schema?.classes?.[className]?.properties || {};
  const properties = {};
  for (const [ident, value] of Object.entries(data)) {
    const name = definitions[ident]?.name || ident;
    properties[name] = typeof value === 'bigint' ? Number(value) : value;
  }
  // The feature id as features.json and the API name it: the `id` property, else `name`
  // (the converter writes the chosen one as text), else the index.
  const named = [properties.id, properties.name].find((v) => typeof v === 'string' && v !== '');
  return { featureId: named ?? String(features[0]), properties };
}

/** Round numbers for a scale bar: 1, 2 or 5 times a power of ten. */
function niceLength(metres) {
  const power = 10 ** Math.floor(Math.log10(metres));
  for (const step of [5, 2, 1]) if (step * power <= metres) return step * power;
  return power;
}

export class Viewer {
  /**
   * @param {HTMLElement} container where the canvas goes (it fills it)
   * @param {{headers: () => Record<string, string>}} api for tile requests (bearer header)
   * @param {Record<string, any>} state window.arviewer.state, updated here
   */
  constructor(container, api, state) {
    this.container = container;
    this.api = api;
    this.state = state;
    /** @type {number[] | null} [lon, lat, h] */
    this.origin = null;
    /** @type {number[] | null} [west, south, east, north] in degrees */
    this.extent = null;
    this.frame = null;
    this.tilesets = [];
    this.hidden = new Set();
    this.pickHandlers = [];
    this.frameHandlers = [];

    this.renderer = new WebGLRenderer({ antialias: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
    this.renderer.setClearColor(new Color('#dfe8ef'));
    this.renderer.xr.enabled = true;
    container.append(this.renderer.domElement);

    this.scene = new Scene();
    this.world = new Group(); // tiles and overlays; the XR rig moves the user, never this
    this.scene.add(this.world);
    this.overlayGroup = new Group();
    this.overlayGroup.name = 'overlays';
    this.world.add(this.overlayGroup);
    this.scene.add(new HemisphereLight('#ffffff', '#8d8d8d', 2.2));
    const sun = new DirectionalLight('#ffffff', 1.6);
    sun.position.set(-300, 500, 200);
    this.scene.add(sun);

    this.camera = new PerspectiveCamera(55, 1, 0.5, 20000);
    this.camera.position.set(200, 200, 200);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.controls.zoomToCursor = true;
    this.controls.screenSpacePanning = false;
    this.controls.maxPolarAngle = Math.PI * 0.495; // never under the ground
    this.keys = new Set();
    window.addEventListener('keydown', (e) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
      this.keys.add(e.key.toLowerCase());
    });
    window.addEventListener('keyup', (e) => this.keys.delete(e.key.toLowerCase()));
    window.addEventListener('resize', () => this.resize());
    this.installPicking();
    this.resize();
    this.clock = new Timer();
    this.renderer.setAnimationLoop(() => this.frameStep());
  }

  resize() {
    const { clientWidth: w, clientHeight: h } = this.container;
    this.camera.aspect = w / Math.max(h, 1);
    this.camera.updateProjectionMatrix();
    this.renderer.setSize(w, h);
  }

  // -- frames ---------------------------------------------------------------------------

  /** Local (three.js) position of ENU metres. */
  enuToLocal(e, n, u) {
    return new Vector3(e, u, -n);
  }

  /** ENU metres [e, n, u] of a local position. */
  localToEnu(v) {
    return [v.x, -v.z, v.y];
  }

  lonLatHToLocal(lon, lat, h) {
    const [e, n, u] = this.frame.toEnu(toEcef(lon, lat, h));
    return this.enuToLocal(e, n, u);
  }

  localToLonLatH(v) {
    return fromEcef(...this.frame.fromEnu(this.localToEnu(v)));
  }

  /** CSS pixels of a geodetic point in the page, or null when it is behind the camera. */
  screenOf(lon, lat, h) {
    const p = this.lonLatHToLocal(lon, lat, h).project(this.camera);
    if (p.z > 1 || p.z < -1) return null;
    const rect = this.renderer.domElement.getBoundingClientRect();
    return { x: rect.left + ((p.x + 1) / 2) * rect.width, y: rect.top + ((1 - p.y) / 2) * rect.height };
  }

  /** Put the ENU frame at `origin` and place every tileset group in it. */
  setOrigin(origin) {
    this.origin = origin;
    this.state.origin = origin;
    this.frame = enuFrame(origin);
    const r = this.frame.rows;
    const o = this.frame.ecefOrigin;
    // local = T * (ecef - o), T: rows e, u, -n
    const rows = [r[0], r[2], r[1].map((v) => -v)];
    const m = new Matrix4().set(
      ...rows[0], -(rows[0][0] * o[0] + rows[0][1] * o[1] + rows[0][2] * o[2]),
      ...rows[1], -(rows[1][0] * o[0] + rows[1][1] * o[1] + rows[1][2] * o[2]),
      ...rows[2], -(rows[2][0] * o[0] + rows[2][1] * o[1] + rows[2][2] * o[2]),
      0, 0, 0, 1,
    ); // prettier-ignore
    this.ecefToLocal = m;
    for (const { tiles } of this.tilesets) this.place(tiles);
  }

  place(tiles) {
    tiles.group.matrixAutoUpdate = false;
    tiles.group.matrix.copy(this.ecefToLocal);
    tiles.group.matrixWorldNeedsUpdate = true;
  }

  // -- tilesets -------------------------------------------------------------------------

  /**
   * Load tilesets ([{url, assetId?, lifecycle?, name?}]); the first one's extent sets the
   * origin and the start view. Resolves when every root is known.
   */
  async loadTilesets(list) {
    const roots = list.map((entry) => this.addTileset(entry));
    await Promise.all(roots);
    if (!this.origin) {
      this.setOrigin([4.7538, 52.3166, 42]); // nothing readable: the demo's square
    }
    this.overview();
  }

  addTileset(entry) {
    const tiles = new TilesRenderer(entry.url);
    tiles.fetchOptions = { headers: this.api.headers() };
    tiles.registerPlugin(new GLTFExtensionsPlugin({ metadata: true, rtc: true }));
    tiles.errorTarget = 12;
    tiles.setCamera(this.camera);
    tiles.setResolutionFromRenderer(this.camera, this.renderer);
    const record = { entry, tiles, settled: false, hasContent: false };
    this.tilesets.push(record);
    this.world.add(tiles.group);
    if (this.ecefToLocal) this.place(tiles);
    tiles.addEventListener('load-tileset', () => {
      this.state.tilesets += 1;
    });
    tiles.addEventListener('load-model', ({ scene, tile }) => {
      this.state.tilesLoaded += 1;
      const named = assetOf(tile, entry.assetId ? { asset: entry.assetId, lifecycle: entry.lifecycle, name: entry.name } : null);
      scene.userData.asset = named;
      scene.visible = !(named && this.hidden.has(named.lifecycle));
    });
    tiles.addEventListener('tiles-load-start', () => {
      record.settled = false;
    });
    tiles.addEventListener('tiles-load-end', () => {
      record.settled = true; // isLoading turns false right after this event: checked per frame
    });
    tiles.addEventListener('load-error', (event) => {
      const message = `A tile could not be loaded (${event.error?.message || 'error'}).`;
      if (!this.state.errors.includes(message)) this.state.errors.push(message);
    });
    return new Promise((resolve) => {
      const done = () => {
        tiles.removeEventListener('load-root-tileset', done);
        const root = tiles.root;
        record.hasContent = Boolean(root && ((root.children && root.children.length) || root.content));
        if (!record.hasContent) record.settled = true;
        if (!this.origin && record.hasContent) this.originFrom(tiles);
        resolve();
      };
      tiles.addEventListener('load-root-tileset', done);
      tiles.addEventListener('load-error', ({ tile }) => { if (!tile || tile === tiles.root) { record.settled = true; resolve(); } });
    });
  }

  /** Origin and extent from a tileset's root bounding volume. */
  originFrom(tiles) {
    const region = tiles.root?.boundingVolume?.region;
    if (region && region[2] > region[0]) {
      const deg = (r) => (r * 180) / Math.PI;
      this.extent = [deg(region[0]), deg(region[1]), deg(region[2]), deg(region[3])];
      // The ground: the median of the assets' lowest heights, so that cables and pipes under
      // the street do not pull street level down with them.
      const lows = (tiles.root.children || [])
        .map((c) => c.boundingVolume?.region?.[4])
        .filter((h) => Number.isFinite(h))
        .sort((a, b) => a - b);
      const ground = lows.length ? lows[Math.floor(lows.length / 2)] : region[4];
      this.setOrigin([(this.extent[0] + this.extent[2]) / 2, (this.extent[1] + this.extent[3]) / 2, ground]);
      return;
    }
    const sphere = new Sphere();
    tiles.getBoundingSphere(sphere); // in the tileset's own (Earth-centred) frame
    const [lon, lat, h] = fromEcef(sphere.center.x, sphere.center.y, sphere.center.z);
    const dLat = (sphere.radius / 6371000) * (180 / Math.PI);
    const dLon = dLat / Math.cos((lat * Math.PI) / 180);
    this.extent = [lon - dLon, lat - dLat, lon + dLon, lat + dLat];
    this.setOrigin([lon, lat, h - sphere.radius * 0.5]);
  }

  /** Show or hide the assets of one lifecycle (existing, planned, removed). */
  setLifecycleVisible(lifecycle, visible) {
    if (visible) this.hidden.delete(lifecycle);
    else this.hidden.add(lifecycle);
    for (const { tiles } of this.tilesets) {
      tiles.group.traverse((object) => {
        const named = object.userData.asset;
        if (named && LIFECYCLES.includes(named.lifecycle)) object.visible = !this.hidden.has(named.lifecycle);
      });
    }
  }

  /** Calls `onSettled` once, on the first frame where every tileset has loaded what it needs. */
  checkReady() {
    if (this.reported || !this.tilesets.length) return;
    const idle = this.tilesets.every((t) => t.settled && !t.tiles.isLoading);
    const something = this.state.tilesLoaded > 0 || !this.tilesets.some((t) => t.hasContent);
    if (idle && something && this.state.tilesPending === 0) {
      this.reported = true;
      if (this.onSettled) this.onSettled();
    }
  }

  // -- camera ---------------------------------------------------------------------------

  /** The size of the scene's extent in metres (east-west, north-south). */
  extentSize() {
    if (!this.extent || !this.frame) return [200, 200];
    const [w, s, e, n] = this.extent;
    const a = this.lonLatHToLocal(w, s, this.origin[2]);
    const b = this.lonLatHToLocal(e, n, this.origin[2]);
    return [Math.abs(b.x - a.x), Math.abs(b.z - a.z)];
  }

  /** The whole extent, seen from the south-east and above. */
  overview() {
    const [w, d] = this.extentSize();
    const size = Math.max(w, d, 40);
    const distance = (size / 2 / Math.tan((this.camera.fov * Math.PI) / 360)) * 1.1;
    this.controls.target.set(0, 0, 0);
    this.camera.position.set(distance * 0.45, distance * 0.6, distance * 0.65);
    this.camera.near = Math.max(0.1, distance / 2000);
    this.camera.far = distance * 20 + 2000;
    this.camera.updateProjectionMatrix();
    this.controls.update();
  }

  /** Look at a geodetic point from 60 m south-east and 40 m above it. */
  flyTo(lon, lat, h) {
    const p = this.lonLatHToLocal(lon, lat, h);
    this.controls.target.copy(p);
    this.camera.position.set(p.x + 40, p.y + 40, p.z + 40);
    this.controls.update();
  }

  /** Eye 1.7 m above the ground at the scene centre, looking north. */
  streetLevel() {
    this.camera.near = 0.1;
    this.camera.updateProjectionMatrix();
    this.camera.position.set(0, EYE_HEIGHT_M, 0);
    this.controls.target.set(0, EYE_HEIGHT_M, -10);
    this.controls.update();
  }

  /** Compass heading of the view in degrees (0 north, 90 east). */
  heading() {
    const dir = this.camera.getWorldDirection(new Vector3());
    return ((Math.atan2(dir.x, -dir.z) * 180) / Math.PI + 360) % 360;
  }

  /** A scale bar: {metres, pixels} that fit in about 120 pixels at the orbit target. */
  scaleBar() {
    const distance = this.camera.position.distanceTo(this.controls.target);
    const height = this.renderer.domElement.clientHeight || 1;
    const perPixel = (2 * distance * Math.tan((this.camera.fov * Math.PI) / 360)) / height;
    const metres = niceLength(perPixel * 120);
    return { metres, pixels: metres / perPixel };
  }

  // -- picking --------------------------------------------------------------------------

  /** Register a handler for taps: it gets the pick (see docs/viewer.md). */
  onPick(handler) {
    this.pickHandlers.push(handler);
  }

  installPicking() {
    const canvas = this.renderer.domElement;
    let down = null;
    canvas.addEventListener('pointerdown', (e) => { down = [e.clientX, e.clientY]; });
    canvas.addEventListener('pointerup', (e) => {
      if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 6) return; // a drag
      down = null;
      const pick = this.pickAt(e.clientX, e.clientY);
      this.state.picked = pick;
      for (const handler of this.pickHandlers) handler(pick);
    });
  }

  /** What lies under a point of the page (CSS pixels). */
  pickAt(x, y) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const ndc = new Vector2(((x - rect.left) / rect.width) * 2 - 1, -((y - rect.top) / rect.height) * 2 + 1);
    const ray = new Raycaster();
    ray.params.Points.threshold = 0.5;
    ray.setFromCamera(ndc, this.camera);
    for (const hit of ray.intersectObject(this.overlayGroup, true)) {
      for (let o = hit.object; o; o = o.parent) {
        if (o.userData.pick) return { ...o.userData.pick, point: this.localToLonLatH(hit.point) };
      }
    }
    const visible = this.tilesets.map((t) => t.tiles.group);
    const hits = ray.intersectObjects(visible, true).filter((h) => isShown(h.object));
    if (hits.length) {
      const hit = hits[0];
      let named = null;
      for (let o = hit.object; o && !named; o = o.parent) named = o.userData.asset || null;
      const feature = hit.object instanceof Mesh ? featureOf(hit) : null;
      return {
        kind: 'feature',
        assetId: named ? named.asset : null,
        assetName: named ? named.name : null,
        lifecycle: named ? named.lifecycle : null,
        featureId: feature ? feature.featureId : null,
        properties: feature ? feature.properties : {},
        point: this.localToLonLatH(hit.point),
      };
    }
    const ground = ray.ray.intersectPlane(new Plane(new Vector3(0, 1, 0), 0), new Vector3());
    return { kind: 'ground', point: ground ? this.localToLonLatH(ground) : null };
  }

  // -- the frame loop -------------------------------------------------------------------

  /** Run `handler(seconds)` before every frame (overlays animate with it). */
  onFrame(handler) {
    this.frameHandlers.push(handler);
  }

  frameStep() {
    this.clock.update();
    const dt = Math.min(this.clock.getDelta(), 0.1);
    const xr = this.renderer.xr.isPresenting;
    if (!xr) {
      this.fly(dt);
      this.controls.update();
    }
    const camera = xr ? this.renderer.xr.getCamera() : this.camera;
    let pending = 0;
    for (const { tiles } of this.tilesets) {
      if (xr && !tiles.hasCamera(camera)) {
        tiles.setCamera(camera);
        tiles.setResolution(camera, 1832, 1920); // a headset eye
      }
      if (!xr) tiles.setResolutionFromRenderer(this.camera, this.renderer);
      tiles.update();
      pending += tiles.stats.downloading + tiles.stats.parsing + tiles.stats.queued;
    }
    this.state.tilesPending = pending;
    this.checkReady();
    for (const handler of this.frameHandlers) handler(dt);
    this.renderer.render(this.scene, this.camera);
  }

  /** WASD / arrow keys move the camera and its target over the ground. */
  fly(dt) {
    if (!this.keys.size) return;
    const forward = this.camera.getWorldDirection(new Vector3()).setY(0).normalize();
    const right = new Vector3().crossVectors(forward, new Vector3(0, 1, 0));
    const speed = Math.max(5, this.camera.position.y) * dt;
    const move = new Vector3();
    if (this.keys.has('w') || this.keys.has('arrowup')) move.add(forward);
    if (this.keys.has('s') || this.keys.has('arrowdown')) move.sub(forward);
    if (this.keys.has('d') || this.keys.has('arrowright')) move.add(right);
    if (this.keys.has('a') || this.keys.has('arrowleft')) move.sub(right);
    move.multiplyScalar(speed);
    this.camera.position.add(move);
    this.controls.target.add(move);
  }

  /** Which XR cameras the tiles renderers use: the page's again after a session. */
  leaveXR() {
    const xrCamera = this.renderer.xr.getCamera();
    for (const { tiles } of this.tilesets) {
      if (tiles.hasCamera(xrCamera)) tiles.deleteCamera(xrCamera);
    }
  }
}

function isShown(object) {
  for (let o = object; o; o = o.parent) if (!o.visible) return false;
  return true;
}

