// Markers of the live items in `viewer.overlayGroup`: sensors (pole, sphere, label), parking
// (ground disc, post, label), alerts (flat rings, pulsing while open), inspections (pins) and
// comments (speech bubbles). Each kind of part is one InstancedMesh, so hundreds of markers
// cost a handful of draw calls; labels are sprites, drawn for the nearest ones only.
// Picking: a hit on an instance is reported on that marker's proxy object, which carries
// `userData.pick = {kind, id, ...}`.
import * as THREE from 'three';
import {
  COLORS,
  inspectionLevel,
  isStale,
  labelText,
  occupancyLevel,
  ruleFor,
  thresholdLevel,
  kindName,
  formatValue,
} from './colors.js';
import { Label } from './labels.js';

/** At most this many labels at once (the nearest), within this distance (m). */
export const LABEL_MAX = 40;
export const LABEL_RANGE_M = 2000;

const GROUP_OF_LAYER = {
  sensors: 'sensor',
  parking: 'parking',
  alerts: 'alert',
  inspections: 'inspection',
  annotations: 'comment',
};

/** Marker size at a distance: real size up to 40 m, then growing so it stays visible. */
function markerScale(distance) {
  return Math.min(25, Math.max(1, distance / 40));
}

/** Label height (m) at a distance: about the same size on screen, within bounds. */
function labelHeight(distance) {
  return Math.min(28, Math.max(0.2, distance * 0.028));
}

function bubbleShape() {
  const shape = new THREE.Shape();
  const w = 1.1, h = 0.75, r = 0.22; // prettier-ignore
  shape.moveTo(-w / 2 + r, 0);
  shape.lineTo(-0.12, 0);
  shape.lineTo(-0.3, -0.35); // the tail
  shape.lineTo(0.12, 0);
  shape.lineTo(w / 2 - r, 0);
  shape.quadraticCurveTo(w / 2, 0, w / 2, r);
  shape.lineTo(w / 2, h - r);
  shape.quadraticCurveTo(w / 2, h, w / 2 - r, h);
  shape.lineTo(-w / 2 + r, h);
  shape.quadraticCurveTo(-w / 2, h, -w / 2, h - r);
  shape.lineTo(-w / 2, r);
  shape.quadraticCurveTo(-w / 2, 0, -w / 2 + r, 0);
  return shape;
}

function basic(color, extra = {}) {
  return new THREE.MeshBasicMaterial({ color, ...extra });
}

/**
 * The parts of each marker group, in marker space (metres at scale 1, y up, standing on its
 * point). `tinted` parts take the marker's colour; `face` groups turn towards the camera.
 */
function groupSpecs() {
  const sphere = new THREE.SphereGeometry(1, 10, 7);
  const pole = new THREE.CylinderGeometry(0.05, 0.05, 1, 6).translate(0, 0.5, 0);
  const ring = new THREE.RingGeometry(1.25, 1.7, 28).rotateX(-Math.PI / 2);
  const disc = new THREE.CircleGeometry(1.1, 20).rotateX(-Math.PI / 2);
  const cone = new THREE.ConeGeometry(0.22, 1.1, 8).rotateX(Math.PI).translate(0, 0.55, 0);
  const cube = new THREE.BoxGeometry(0.6, 0.6, 0.6);
  const bubble = new THREE.ShapeGeometry(bubbleShape(), 6);
  const at = (x, y, z, s = 1, sy = s) => new THREE.Matrix4().compose(
    new THREE.Vector3(x, y, z), new THREE.Quaternion(), new THREE.Vector3(s, sy, s)); // prettier-ignore
  return {
    sensor: {
      top: 2.9,
      label: true,
      parts: [
        { geometry: pole, material: basic('#495057'), offset: at(0, 0, 0, 1, 2.5) },
        { geometry: sphere, material: basic('#ffffff'), offset: at(0, 2.5, 0, 0.4), tinted: true },
      ],
    },
    parking: {
      top: 2.0,
      label: true,
      parts: [
        { geometry: disc, material: basic('#ffffff', { transparent: true, opacity: 0.75 }), offset: at(0, 0.02, 0), tinted: true },
        { geometry: pole, material: basic('#495057'), offset: at(0, 0, 0, 1, 1.4) },
        { geometry: cube, material: basic('#ffffff'), offset: at(0, 1.6, 0), tinted: true },
      ],
    },
    alert: {
      top: 0.2,
      pulse: true,
      parts: [
        {
          geometry: ring,
          material: basic('#ffffff', { transparent: true, opacity: 0.9, side: THREE.DoubleSide, depthWrite: false }),
          offset: at(0, 0.1, 0),
          tinted: true,
        },
      ],
    },
    inspection: {
      top: 1.9,
      parts: [
        { geometry: cone, material: basic('#ffffff'), offset: at(0, 0, 0), tinted: true },
        { geometry: sphere, material: basic('#ffffff'), offset: at(0, 1.45, 0, 0.38), tinted: true },
      ],
    },
    comment: {
      top: 2.4,
      face: true,
      parts: [
        { geometry: bubble, material: basic('#212529', { side: THREE.DoubleSide }), offset: at(0, 1.45, -0.02, 1.12) },
        { geometry: bubble, material: basic('#ffffff', { side: THREE.DoubleSide }), offset: at(0, 1.5, 0), tinted: true },
      ],
    },
  };
}

/** Instanced meshes of one marker group; slot i of every part belongs to entries[i]. */
class Pool {
  constructor(group, spec) {
    this.group = group;
    this.spec = spec;
    this.entries = [];
    this.capacity = 0;
    this.meshes = [];
    this.grow(32);
  }

  grow(capacity) {
    const old = this.meshes;
    this.meshes = this.spec.parts.map((part, index) => {
      const mesh = new THREE.InstancedMesh(part.geometry, part.material, capacity);
      mesh.instanceMatrix.setUsage(THREE.DynamicDrawUsage);
      mesh.frustumCulled = false; // instances move; bounds are recomputed for picking only
      mesh.count = this.entries.length;
      if (part.tinted) mesh.setColorAt(0, new THREE.Color(1, 1, 1));
      const previous = old[index];
      if (previous) {
        mesh.instanceMatrix.array.set(previous.instanceMatrix.array.subarray(0, this.entries.length * 16));
        if (previous.instanceColor && mesh.instanceColor) {
          mesh.instanceColor.array.set(previous.instanceColor.array.subarray(0, this.entries.length * 3));
        }
        previous.removeFromParent();
        previous.dispose();
      }
      const pool = this;
      mesh.raycast = function raycast(raycaster, intersects) {
        if (this.count === 0) return;
        const start = intersects.length;
        THREE.InstancedMesh.prototype.raycast.call(this, raycaster, intersects);
        for (let i = start; i < intersects.length; i += 1) {
          const entry = pool.entries[intersects[i].instanceId];
          if (entry) intersects[i].object = entry.proxy;
        }
      };
      this.group.add(mesh);
      return mesh;
    });
    this.capacity = capacity;
  }

  add(entry) {
    if (this.entries.length === this.capacity) this.grow(this.capacity * 2);
    entry.slot = this.entries.length;
    this.entries.push(entry);
    for (const mesh of this.meshes) mesh.count = this.entries.length;
  }

  remove(entry) {
    const last = this.entries.pop();
    if (last !== entry) {
      this.entries[entry.slot] = last;
      last.slot = entry.slot;
      this.write(last);
      this.paint(last);
    }
    for (const mesh of this.meshes) {
      mesh.count = this.entries.length;
      mesh.boundingSphere = null;
    }
  }

  /** Write the instance matrices of `entry` from its position, scale, yaw and pulse. */
  write(entry, m = new THREE.Matrix4()) {
    const q = entry.yaw ? new THREE.Quaternion().setFromAxisAngle(Y_AXIS, entry.yaw) : IDENTITY_Q;
    const s = entry.scale * (entry.pulse || 1);
    const at = entry.spread ? TMP_V.copy(entry.position).setX(entry.position.x + entry.spread * entry.scale) : entry.position;
    m.compose(at, q, new THREE.Vector3(s, s, s));
    this.spec.parts.forEach((part, index) => {
      const mesh = this.meshes[index];
      mesh.setMatrixAt(entry.slot, TMP_M.multiplyMatrices(m, part.offset));
      mesh.instanceMatrix.needsUpdate = true;
      mesh.boundingSphere = null;
    });
  }

  paint(entry) {
    this.spec.parts.forEach((part, index) => {
      if (!part.tinted) return;
      const mesh = this.meshes[index];
      mesh.setColorAt(entry.slot, entry.color3);
      mesh.instanceColor.needsUpdate = true;
    });
  }

  dispose() {
    for (const mesh of this.meshes) {
      mesh.removeFromParent();
      mesh.dispose();
    }
  }
}

const Y_AXIS = new THREE.Vector3(0, 1, 0);
const IDENTITY_Q = new THREE.Quaternion();
const TMP_M = new THREE.Matrix4();
const TMP_V = new THREE.Vector3();
/** Sideways distance (m at scale 1) between the markers of one sensor's datastreams. */
const SPREAD_M = 0.9;

/**
 * The markers of the live overlay.
 *
 * `apply(upserts, removes)` takes items as the live client gives them; `setRules(rules)`
 * recolours sensors; `setReplay(valueAt)` shows sensor values at a past time (`valueAt(item)`
 * -> `{value, time}`, null when there was none, undefined while unknown) and `setReplay(null)`
 * returns to live values. Every marker's summary is kept in `overlays` (the
 * `window.arviewer.state.overlays` object): key `${layer}:${item key}` ->
 * `{layer, id, label, value, color, position: [e, n, u]}`.
 */
export class MarkerLayer {
  /**
   * @param {{overlayGroup: THREE.Group, enuToLocal: (e: number, n: number, u: number) => THREE.Vector3,
   *   scene: THREE.Scene, requestRender?: () => void}} viewer
   * @param {{overlays?: Record<string, any>, now?: () => number}} [options]
   */
  constructor(viewer, { overlays = {}, now = () => Date.now() } = {}) {
    this.viewer = viewer;
    this.overlays = overlays;
    this.now = now;
    this.rules = [];
    this.replay = null;
    this.replayTime = null;
    this.root = new THREE.Group();
    this.root.name = 'live-markers';
    viewer.overlayGroup.add(this.root);
    this.specs = groupSpecs();
    /** @type {Record<string, Pool>} */
    this.pools = {};
    for (const [name, spec] of Object.entries(this.specs)) this.pools[name] = new Pool(this.root, spec);
    /** @type {Map<string, any>} */
    this.entries = new Map();
    /** @type {Map<string, Set<any>>} sensor id -> its datastreams' entries */
    this.bySensor = new Map();
    this.labelsShown = new Set();
    this.dirty = true;
    this.lastCamera = new THREE.Vector3(Infinity, 0, 0);
    this.lastFrame = -1;
    this.camLocal = new THREE.Vector3();
    this.inverse = new THREE.Matrix4();
    this.forward = new THREE.Vector3();
    const scene = viewer.scene;
    const previous = scene.onBeforeRender;
    this.restore = () => {
      scene.onBeforeRender = previous;
    };
    scene.onBeforeRender = (renderer, sceneArg, camera, ...rest) => {
      previous.call(scene, renderer, sceneArg, camera, ...rest);
      this.tick(camera, renderer);
    };
  }

  /** @param {any[]} rules as GET /api/v1/rules gives them */
  setRules(rules) {
    this.rules = rules || [];
    for (const entry of this.entries.values()) this.refresh(entry);
    this.changed();
  }

  /**
   * @param {((item: any) => ({value: number, time: number} | null | undefined)) | null} valueAt
   * @param {number|null} [time] the replayed moment (ms), for staleness
   */
  setReplay(valueAt, time = null) {
    this.replay = valueAt;
    this.replayTime = valueAt ? time : null;
    for (const entry of this.entries.values()) {
      if (entry.group === 'sensor' || entry.group === 'parking') this.refresh(entry);
    }
    this.changed();
  }

  /**
   * @param {any[]} upserts items to add or replace (by key) @param {string[]} removes keys
   */
  apply(upserts, removes) {
    for (const key of removes) this.remove(key);
    for (const item of upserts) this.upsert(item);
    this.changed();
  }

  /** Mark an alert as acknowledged (or any status) before the live update says so. */
  setAlertStatus(alertId, status) {
    const entry = this.entries.get(`alert:${alertId}`);
    if (!entry) return;
    entry.item = { ...entry.item, data: { ...entry.item.data, status } };
    this.refresh(entry);
    this.changed();
  }

  /** The item shown under `key`, if any. @param {string} key */
  item(key) {
    const entry = this.entries.get(key);
    return entry ? entry.item : null;
  }

  /** Items of a layer that are in front of `camera`, nearest first. */
  nearest(layers, limit) {
    const list = [];
    for (const entry of this.entries.values()) {
      if (layers.includes(entry.item.layer)) list.push(entry);
    }
    list.sort((a, b) => (a.distance ?? Infinity) - (b.distance ?? Infinity));
    return list.slice(0, limit).map((e) => e.item);
  }

  upsert(item) {
    const group = GROUP_OF_LAYER[item.layer];
    if (!group) return;
    let entry = this.entries.get(item.key);
    if (entry && entry.group !== group) {
      this.remove(item.key);
      entry = null;
    }
    const p = item.position || [0, 0, 0];
    const position = this.viewer.enuToLocal(p[0], p[1], p.length > 2 ? p[2] : 0);
    if (!entry) {
      const proxy = new THREE.Object3D();
      proxy.name = `live:${item.key}`;
      this.root.add(proxy);
      entry = {
        key: item.key, group, item, position, proxy, slot: -1, scale: 1, yaw: 0, pulse: 1,
        distance: null, spread: 0, sensor: null, color: COLORS.grey, color3: new THREE.Color(COLORS.grey), level: 'grey',
        label: null, text: '', value: null,
      }; // prettier-ignore
      this.entries.set(item.key, entry);
      this.pools[group].add(entry);
    }
    entry.item = item;
    entry.position.copy(position);
    entry.proxy.position.copy(position);
    this.refresh(entry);
    const sensor = group === 'sensor' && item.data ? item.data.sensor : null;
    if (sensor && entry.sensor !== sensor) {
      this.unlinkSensor(entry);
      entry.sensor = sensor;
      if (!this.bySensor.has(sensor)) this.bySensor.set(sensor, new Set());
      this.bySensor.get(sensor).add(entry);
      this.spreadSensor(sensor);
    }
    this.pools[group].write(entry);
  }

  unlinkSensor(entry) {
    const group = entry.sensor ? this.bySensor.get(entry.sensor) : null;
    if (!group) return;
    group.delete(entry);
    if (group.size === 0) this.bySensor.delete(entry.sensor);
    else this.spreadSensor(entry.sensor);
    entry.sensor = null;
  }

  /** Put the markers of one sensor's datastreams side by side (they share its position). */
  spreadSensor(sensor) {
    const group = sensor ? this.bySensor.get(sensor) : null;
    if (!group) return;
    const siblings = [...group].sort((a, b) => (a.key < b.key ? -1 : 1));
    siblings.forEach((e, i) => {
      const spread = siblings.length > 1 ? (i - (siblings.length - 1) / 2) * SPREAD_M : 0;
      if (e.spread !== spread) {
        e.spread = spread;
        if (e.slot >= 0) this.pools[e.group].write(e);
      }
    });
  }

  remove(key) {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.pools[entry.group].remove(entry);
    this.unlinkSensor(entry);
    entry.proxy.removeFromParent();
    if (entry.label) entry.label.dispose();
    this.labelsShown.delete(entry);
    delete this.overlays[`${entry.item.layer}:${key}`];
  }

  /** Recompute colour, label text and the pick of one entry. */
  refresh(entry) {
    const { item } = entry;
    const data = item.data || {};
    let value = typeof data.value === 'number' ? data.value : null;
    let time = item.time;
    let now = this.now();
    let level = 'grey';
    let text = '';
    if ((entry.group === 'sensor' || entry.group === 'parking') && this.replay) {
      const past = this.replay(item);
      value = past ? past.value : null;
      time = past ? past.time : null;
      now = this.replayTime ?? now;
    }
    const when = { time, now };
    switch (entry.group) {
      case 'sensor':
        level = value === null ? 'grey' : thresholdLevel(value, ruleFor(this.rules, data.sensor, item.kind), when);
        text = labelText(item, value);
        break;
      case 'parking':
        level = value === null ? 'grey' : occupancyLevel(value, when);
        text = labelText(item, value);
        break;
      case 'alert':
        level = data.status === 'open' ? 'red' : 'amber';
        text = `Alert: ${kindName(item.kind)} ${formatValue(data.value)}`;
        break;
      case 'inspection':
        level = inspectionLevel(data.status);
        text = `${data.category || 'inspection'} (${(data.status || '').replace('_', ' ')})`;
        break;
      case 'comment':
        level = 'comment';
        text = (data.text || '').slice(0, 80);
        break;
      default:
        break;
    }
    if (isStale(time, now) && (entry.group === 'sensor' || entry.group === 'parking')) level = 'grey';
    entry.level = level;
    entry.color = COLORS[level] || COLORS.grey;
    entry.color3.set(entry.color);
    entry.text = text;
    entry.value = value;
    entry.pulsing = entry.group === 'alert' && data.status === 'open';
    if (!entry.pulsing) entry.pulse = 1;
    if (entry.slot >= 0) this.pools[entry.group].paint(entry);
    if (entry.label && this.specs[entry.group].label) entry.label.set(text, entry.color);
    entry.proxy.userData.pick = pickOf(entry.group, item);
    const p = item.position || [];
    this.overlays[`${item.layer}:${item.key}`] = {
      layer: item.layer, id: item.key, label: text, value, color: level,
      position: [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0],
    }; // prettier-ignore
  }

  changed() {
    this.dirty = true;
    if (this.viewer.requestRender) this.viewer.requestRender();
  }

  /** Per rendered frame: sizes, facing, labels, pulses. */
  tick(camera, renderer) {
    const frame = renderer && renderer.info ? renderer.info.render.frame : -2;
    if (frame === this.lastFrame && frame !== -2) return;
    this.lastFrame = frame;
    this.root.updateWorldMatrix(true, false);
    this.inverse.copy(this.root.matrixWorld).invert();
    camera.getWorldPosition(this.camLocal);
    this.camLocal.applyMatrix4(this.inverse);
    const moved = this.camLocal.distanceToSquared(this.lastCamera) > 1e-6;
    const t = performance.now() / 1000;
    if (moved || this.dirty) {
      this.lastCamera.copy(this.camLocal);
      this.layout(camera);
      this.dirty = false;
    }
    let pulsing = false;
    for (const entry of this.pools.alert.entries) {
      if (!entry.pulsing) continue;
      entry.pulse = 1 + 0.3 * (0.5 + 0.5 * Math.sin(t * 4));
      this.pools.alert.write(entry);
      pulsing = true;
    }
    if (pulsing && this.viewer.requestRender) this.viewer.requestRender();
  }

  layout(camera) {
    camera.getWorldDirection(this.forward);
    this.forward.transformDirection(this.inverse);
    const candidates = [];
    const toMarker = new THREE.Vector3();
    const matrix = new THREE.Matrix4();
    for (const entry of this.entries.values()) {
      toMarker.subVectors(entry.position, this.camLocal);
      const distance = toMarker.length();
      entry.distance = distance;
      entry.scale = markerScale(distance);
      const spec = this.specs[entry.group];
      if (spec.face) entry.yaw = Math.atan2(-toMarker.x, -toMarker.z);
      this.pools[entry.group].write(entry, matrix);
      if (spec.label && distance < LABEL_RANGE_M && toMarker.dot(this.forward) > 0) candidates.push(entry);
    }
    candidates.sort((a, b) => a.distance - b.distance);
    const shown = this.declutter(candidates, camera);
    for (const entry of this.labelsShown) {
      if (!shown.has(entry) && entry.label) entry.label.sprite.visible = false;
    }
    for (const entry of shown) {
      if (!entry.label) {
        entry.label = new Label();
        entry.label.sprite.raycast = () => {}; // markers are picked by their meshes
        this.root.add(entry.label.sprite);
      }
      const label = entry.label;
      label.set(entry.text, entry.color);
      label.sprite.visible = true;
      label.size(labelHeight(entry.distance));
      label.sprite.position.copy(entry.labelAt);
    }
    // Keep the textures of recently shown labels; free the farthest hidden ones beyond that.
    const hidden = [...this.labelsShown].filter((e) => !shown.has(e) && e.label);
    if (hidden.length > 3 * LABEL_MAX) {
      hidden.sort((a, b) => b.distance - a.distance);
      for (const entry of hidden.slice(0, hidden.length - 3 * LABEL_MAX)) {
        entry.label.dispose();
        entry.label = null;
        this.labelsShown.delete(entry);
      }
    }
    for (const entry of shown) this.labelsShown.add(entry);
  }

  /**
   * The labels to show: nearest first, at most LABEL_MAX, leaving out any that would overlap
   * one already placed on the screen. Labels of several datastreams of one sensor are stacked.
   */
  declutter(candidates, camera) {
    const shown = new Set();
    const placed = [];
    const stack = new Map(); // sensor id -> labels stacked so far
    const view = new THREE.Vector3();
    const p = camera.projectionMatrix.elements;
    const viewMatrix = TMP_M.multiplyMatrices(camera.matrixWorldInverse, this.root.matrixWorld);
    for (const entry of candidates) {
      if (shown.size >= LABEL_MAX) break;
      const height = labelHeight(entry.distance);
      const sensor = entry.item.data && entry.item.data.sensor;
      const level = sensor ? stack.get(sensor) || 0 : 0;
      entry.labelAt = entry.labelAt || new THREE.Vector3();
      entry.labelAt.copy(entry.position);
      entry.labelAt.x += entry.spread * entry.scale;
      entry.labelAt.y += this.specs[entry.group].top * entry.scale + 0.1 + level * height * 1.15;
      view.copy(entry.labelAt).applyMatrix4(viewMatrix);
      const depth = -view.z;
      if (depth <= 0) continue;
      const x = (p[0] * view.x) / depth;
      const y = (p[5] * view.y) / depth;
      const h = (p[5] * height) / depth;
      const aspect = entry.label ? entry.label.aspect : Math.max(3, entry.text.length * 0.55);
      const w = (p[0] * height * aspect) / depth;
      const box = [x - w / 2, y, x + w / 2, y + h];
      if (placed.some((b) => b[0] < box[2] && box[0] < b[2] && b[1] < box[3] && box[1] < b[3])) continue;
      placed.push(box);
      shown.add(entry);
      if (sensor) stack.set(sensor, level + 1);
    }
    return shown;
  }

  dispose() {
    this.restore();
    for (const key of [...this.entries.keys()]) this.remove(key);
    for (const pool of Object.values(this.pools)) pool.dispose();
    const geometries = new Set();
    for (const spec of Object.values(this.specs)) {
      for (const part of spec.parts) {
        geometries.add(part.geometry);
        part.material.dispose();
      }
    }
    for (const geometry of geometries) geometry.dispose();
    this.root.removeFromParent();
  }
}

/** What a tap on a marker reports (`userData.pick`). */
function pickOf(group, item) {
  const data = item.data || {};
  const common = { key: item.key, layer: item.layer, time: item.time, position: item.position };
  switch (group) {
    case 'sensor':
      return { kind: 'sensor', id: data.sensor, sensor: data.sensor, datastream: item.kind, unit: data.unit, value: data.value, ...common };
    case 'parking':
      if (data.place) return { kind: 'parking', id: data.place, place: data.place, name: data.name, value: data.value, datastream: item.kind, ...common };
      return { kind: 'parking', id: data.sensor, sensor: data.sensor, datastream: item.kind, unit: data.unit, value: data.value, ...common };
    case 'alert':
      return { kind: 'alert', id: data.alert, sensor: data.sensor, status: data.status, value: data.value, datastream: item.kind, ...common };
    case 'inspection':
      return { kind: 'inspection', id: data.inspection, status: data.status, ...common };
    case 'comment':
      return { kind: 'comment', id: data.comment, round: data.round, ...common };
    default:
      return { kind: group, id: item.key, ...common };
  }
}
