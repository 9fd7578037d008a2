// The viewer's local frame: metres, Y up, at an origin given as WGS 84 longitude, latitude
// (degrees) and ellipsoidal height (metres); east = +x, up = +y, north = -z. Tilesets are in
// the Earth-centred frame (EPSG:4978); this module converts between the two.
import * as THREE from 'three';
import { WGS84_ELLIPSOID } from '3d-tiles-renderer';

const DEG = Math.PI / 180;
const ellipsoid = WGS84_ELLIPSOID;

/** The local frame at one origin. */
export class LocalFrame {
  /** @param {number[]} origin [lon, lat, h] (degrees, degrees, metres) */
  constructor(origin) {
    this.origin = [origin[0], origin[1], origin[2]];
    const enu = new THREE.Matrix4();
    ellipsoid.getEastNorthUpFrame(origin[1] * DEG, origin[0] * DEG, origin[2], enu);
    // local (x, y, z) = (e, u, -n): the columns give where each local axis points in ENU
    const localToEnu = new THREE.Matrix4().set(1, 0, 0, 0, 0, 0, -1, 0, 0, 1, 0, 0, 0, 0, 0, 1);
    /** Local -> Earth-centred. */
    this.localToEcef = enu.multiply(localToEnu);
    /** Earth-centred -> local (the placement of every tileset). */
    this.ecefToLocal = this.localToEcef.clone().invert();
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
    const p = new THREE.Vector3();
    ellipsoid.getCartographicToPosition(lat * DEG, lon * DEG, h, p);
    return p.applyMatrix4(this.ecefToLocal);
  }

  /** @param {THREE.Vector3} v @returns {number[]} [lon, lat, h] */
  localToLonLatH(v) {
    const p = v.clone().applyMatrix4(this.localToEcef);
    const c = {};
    ellipsoid.getPositionToCartographic(p, c);
    return [c.lon / DEG, c.lat / DEG, c.height];
  }
}

/**
 * Where a tileset's root stands: `{center: [lon, lat], minHeight, extent: [w, s, e, n]}` in
 * degrees and metres, from its bounding volume (region, box or sphere, under the root's
 * transform); null for an empty or degenerate root (a region of zeros, nothing in it).
 * @param {any} root the root tile as the tileset JSON gives it
 */
export function placeOfRoot(root) {
  if (!root || !root.boundingVolume) return null;
  const volume = root.boundingVolume;
  const empty = !root.content && !(root.children && root.children.length);
  if (empty) return null;
  if (Array.isArray(volume.region)) {
    const [w, s, e, n, minH] = volume.region;
    if (w === e && s === n) return null;
    return {
      center: [((w + e) / 2) / DEG, ((s + n) / 2) / DEG],
      minHeight: minH,
      extent: [w / DEG, s / DEG, e / DEG, n / DEG],
    };
  }
  const transform = new THREE.Matrix4();
  if (Array.isArray(root.transform)) transform.fromArray(root.transform);
  let corners = [];
  let center;
  if (Array.isArray(volume.box)) {
    const b = volume.box;
    center = new THREE.Vector3(b[0], b[1], b[2]);
    const axes = [
      new THREE.Vector3(b[3], b[4], b[5]),
      new THREE.Vector3(b[6], b[7], b[8]),
      new THREE.Vector3(b[9], b[10], b[11]),
    ];
    for (const sx of [-1, 1]) for (const sy of [-1, 1]) for (const sz of [-1, 1]) {
      corners.push(center.clone()
        .addScaledVector(axes[0], sx).addScaledVector(axes[1], sy).addScaledVector(axes[2], sz));
    } // prettier-ignore
  } else if (Array.isArray(volume.sphere)) {
    const [x, y, z, r] = volume.sphere;
    center = new THREE.Vector3(x, y, z);
    for (const d of [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]) {
      corners.push(center.clone().add(new THREE.Vector3(...d).multiplyScalar(r)));
    }
  } else {
    return null;
  }
  center.applyMatrix4(transform);
  corners = corners.map((c) => c.applyMatrix4(transform));
  if (center.length() < 1e6) return null; // not on the Earth: nothing to place
  const c = {};
  ellipsoid.getPositionToCartographic(center, c);
  let minHeight = Infinity;
  let [w, s, e, n] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const corner of corners) {
    const k = {};
    ellipsoid.getPositionToCartographic(corner, k);
    minHeight = Math.min(minHeight, k.height);
    w = Math.min(w, k.lon); e = Math.max(e, k.lon);
    s = Math.min(s, k.lat); n = Math.max(n, k.lat);
  } // prettier-ignore
  return { center: [c.lon / DEG, c.lat / DEG], minHeight, extent: [w / DEG, s / DEG, e / DEG, n / DEG] };
}

/** Degrees to radians. @param {number} degrees */
export const toRadians = (degrees) => degrees * DEG;
