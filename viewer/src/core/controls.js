// Moving the camera: OrbitControls (drag to orbit, right-drag to pan, wheel to zoom towards the
// cursor, with damping), WASD or the arrow keys to fly over the ground (Q/E or PageUp/PageDown
// down and up, Shift faster), and smooth flights to a place.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const FLIGHT_MS = 900;
const KEYS = {
  forward: ['w', 'arrowup'],
  back: ['s', 'arrowdown'],
  left: ['a', 'arrowleft'],
  right: ['d', 'arrowright'],
  down: ['q', 'pagedown'],
  up: ['e', 'pageup'],
};
const ease = (t) => (t < 0.5 ? 4 * t * t * t : 1 - (-2 * t + 2) ** 3 / 2);

export class CameraControls {
  /**
   * @param {THREE.PerspectiveCamera} camera @param {HTMLElement} element
   * @param {{groundY: () => number, changed: () => void}} hooks
   */
  constructor(camera, element, hooks) {
    this.camera = camera;
    this.hooks = hooks;
    this.orbit = new OrbitControls(camera, element);
    this.orbit.enableDamping = true;
    this.orbit.dampingFactor = 0.12;
    this.orbit.zoomToCursor = true;
    this.orbit.screenSpacePanning = false;
    this.orbit.maxPolarAngle = Math.PI * 0.52;
    this.orbit.minDistance = 0.5;
    this.orbit.maxDistance = 20000;
    this.orbit.addEventListener('change', () => hooks.changed());
    this.keys = new Set();
    this.flight = null;
    this.enabled = true;
    const typing = (event) => {
      const t = event.target;
      return t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement
        || (t instanceof HTMLElement && t.isContentEditable);
    }; // prettier-ignore
    window.addEventListener('keydown', (event) => {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key.toLowerCase();
      if (Object.values(KEYS).some((list) => list.includes(key))) {
        this.keys.add(key);
        if (key.startsWith('arrow') || key.startsWith('page')) event.preventDefault();
        hooks.changed();
      }
      if (event.key === 'Shift') this.fast = true;
    });
    window.addEventListener('keyup', (event) => {
      this.keys.delete(event.key.toLowerCase());
      if (event.key === 'Shift') this.fast = false;
    });
    window.addEventListener('blur', () => this.keys.clear());
  }

  get target() {
    return this.orbit.target;
  }

  /** Put the camera at `position` looking at `target` at once. */
  set(position, target) {
    this.flight = null;
    this.camera.position.copy(position);
    this.orbit.target.copy(target);
    this.orbit.update();
    this.hooks.changed();
  }

  /** Fly to `position` looking at `target` (about a second). */
  flyTo(position, target) {
    this.flight = {
      start: performance.now(),
      fromPosition: this.camera.position.clone(),
      fromTarget: this.orbit.target.clone(),
      toPosition: position.clone(),
      toTarget: target.clone(),
    };
    this.hooks.changed();
  }

  /** True while something moves (a flight, keys held, damping). */
  get moving() {
    return Boolean(this.flight) || this.keys.size > 0;
  }

  /** Per frame. @param {number} dt seconds since the last frame */
  update(dt) {
    if (!this.enabled) return;
    if (this.flight) {
      const f = this.flight;
      const t = Math.min(1, (performance.now() - f.start) / FLIGHT_MS);
      const k = ease(t);
      this.camera.position.lerpVectors(f.fromPosition, f.toPosition, k);
      this.orbit.target.lerpVectors(f.fromTarget, f.toTarget, k);
      if (t >= 1) this.flight = null;
      this.hooks.changed();
    }
    if (this.keys.size) this.fly(dt);
    this.orbit.update();
  }

  fly(dt) {
    const has = (name) => KEYS[name].some((k) => this.keys.has(k));
    const forward = this.camera.getWorldDirection(new THREE.Vector3()).setY(0);
    if (forward.lengthSq() < 1e-8) forward.set(0, 0, -1).applyQuaternion(this.camera.quaternion).setY(0);
    forward.normalize();
    const right = new THREE.Vector3().crossVectors(forward, new THREE.Vector3(0, 1, 0));
    const above = Math.max(2, this.camera.position.y - this.hooks.groundY());
    const speed = Math.min(400, Math.max(4, above * 1.2)) * (this.fast ? 4 : 1) * dt;
    const move = new THREE.Vector3();
    if (has('forward')) move.add(forward);
    if (has('back')) move.sub(forward);
    if (has('right')) move.add(right);
    if (has('left')) move.sub(right);
    if (has('up')) move.y += 1;
    if (has('down')) move.y -= 1;
    if (move.lengthSq() === 0) return;
    move.normalize().multiplyScalar(speed);
    this.flight = null;
    this.camera.position.add(move);
    this.orbit.target.add(move);
    this.hooks.changed();
  }
}
