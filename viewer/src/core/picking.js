// Picking: what lies under a tap (pointer down and up without a drag). Overlays first (objects
// that carry `userData.pick`), then the tiles (the feature id from EXT_mesh_features and its row
// of the EXT_structural_metadata property table), else the ground plane.
import * as THREE from 'three';

/** A pointer that moved more than this (CSS px) between down and up was a drag, not a tap. */
const TAP_SLOP_PX = 6;

/** True when the object and all its parents are visible. @param {THREE.Object3D} object */
export function isShown(object) {
  for (let o = object; o; o = o.parent) if (!o.visible) return false;
  return true;
}

/** Plain JSON values (64-bit integers as numbers, typed arrays as arrays). */
function plain(value) {
  if (typeof value === 'bigint') return Number(value);
  if (ArrayBuffer.isView(value)) return Array.from(value, plain);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object' && !(value instanceof THREE.Vector2 || value instanceof THREE.Vector3)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  if (value && typeof value.toArray === 'function') return value.toArray();
  return value;
}

/**
 * The feature under a hit on tile content: `{featureIndex, properties}` or null when the hit
 * object has no feature metadata.
 * @param {THREE.Intersection} hit
 */
export function featureOfHit(hit) {
  const object = hit.object;
  const { meshFeatures, structuralMetadata } = object.userData;
  if (!meshFeatures) return null;
  const info = meshFeatures.getFeatureInfo();
  let ids;
  if (hit.faceIndex !== undefined && hit.faceIndex !== null && hit.barycoord) {
    ids = meshFeatures.getFeatures(hit.faceIndex, hit.barycoord);
  } else if (Number.isInteger(hit.index)) {
    // points and lines: the feature id of the vertex hit
    ids = info.map((feature) => {
      if ('attribute' in feature) {
        const attribute = object.geometry.getAttribute(`_feature_id_${feature.attribute}`);
        const value = attribute ? attribute.getX(hit.index) : null;
        return value === feature.nullFeatureId ? null : value;
      }
      return 'texture' in feature ? null : hit.index;
    });
  } else {
    return null;
  }
  for (let i = 0; i < info.length; i += 1) {
    const id = ids[i];
    if (id === null || id === undefined) continue;
    const table = info[i].propertyTable;
    let properties = {};
    if (structuralMetadata && table !== null && table !== undefined) {
      properties = plain(structuralMetadata.getPropertyTableData(table, id));
    }
    return { featureIndex: id, properties };
  }
  return null;
}

/**
 * Listen for taps on `canvas` and call `onTap(x, y)` with CSS pixel coordinates (client).
 * @param {HTMLCanvasElement} canvas @param {(x: number, y: number) => void} onTap
 */
export function listenForTaps(canvas, onTap) {
  const downs = new Map();
  canvas.addEventListener('pointerdown', (event) => {
    downs.set(event.pointerId, { x: event.clientX, y: event.clientY, moved: false, buttons: event.button });
  });
  canvas.addEventListener('pointermove', (event) => {
    const down = downs.get(event.pointerId);
    if (down && Math.hypot(event.clientX - down.x, event.clientY - down.y) > TAP_SLOP_PX) down.moved = true;
  });
  canvas.addEventListener('pointerup', (event) => {
    const down = downs.get(event.pointerId);
    downs.delete(event.pointerId);
    if (!down || down.moved || down.buttons !== 0) return;
    if (Math.hypot(event.clientX - down.x, event.clientY - down.y) > TAP_SLOP_PX) return;
    onTap(event.clientX, event.clientY);
  });
  canvas.addEventListener('pointercancel', (event) => downs.delete(event.pointerId));
}

/**
 * Cast a ray through the page point (x, y) and find what it hits.
 * @param {{camera: THREE.Camera, canvas: HTMLCanvasElement, overlayGroup: THREE.Object3D,
 *   tileGroups: THREE.Object3D[], groundY: number}} where
 * @param {number} x @param {number} y
 * @returns {{kind: 'overlay', pick: any, hit: THREE.Intersection} | {kind: 'tile', hit: THREE.Intersection}
 *   | {kind: 'ground', point: THREE.Vector3 | null}}
 */
export function castAt({ camera, canvas, overlayGroup, tileGroups, groundY }, x, y) {
  const rect = canvas.getBoundingClientRect();
  const ndc = new THREE.Vector2(((x - rect.left) / rect.width) * 2 - 1, -((y - rect.top) / rect.height) * 2 + 1);
  const raycaster = new THREE.Raycaster();
  raycaster.setFromCamera(ndc, camera);
  raycaster.camera = camera; // sprites need it
  raycaster.params.Points.threshold = 0.4;
  raycaster.params.Line.threshold = 0.3;
  for (const hit of raycaster.intersectObject(overlayGroup, true)) {
    if (!isShown(hit.object)) continue;
    for (let o = hit.object; o && o !== overlayGroup.parent; o = o.parent) {
      if (o.userData && o.userData.pick) return { kind: 'overlay', pick: o.userData.pick, hit };
    }
  }
  const hits = raycaster.intersectObjects(tileGroups, true).filter((h) => isShown(h.object));
  hits.sort((a, b) => a.distance - b.distance);
  if (hits.length) return { kind: 'tile', hit: hits[0] };
  const plane = new THREE.Plane(new THREE.Vector3(0, 1, 0), -groundY);
  const point = raycaster.ray.intersectPlane(plane, new THREE.Vector3());
  return { kind: 'ground', point };
}
