// The north arrow (turns with the camera's heading) and the scale bar (metres at the point the
// camera looks at, in round numbers: 1, 2 or 5 times a power of ten).
import * as THREE from 'three';

const BAR_MAX_PX = 120;

/** The largest 1, 2 or 5 x 10^k not above `metres`. @param {number} metres */
export function roundLength(metres) {
  const power = 10 ** Math.floor(Math.log10(metres));
  for (const step of [5, 2, 1]) if (step * power <= metres) return step * power;
  return power;
}

/** Compass heading of a camera in degrees (0 north, 90 east). @param {THREE.Camera} camera */
export function headingOf(camera) {
  const dir = camera.getWorldDirection(new THREE.Vector3());
  if (Math.hypot(dir.x, dir.z) < 1e-6) dir.set(0, 0, -1).applyQuaternion(camera.quaternion);
  const up = new THREE.Vector3(0, 1, 0).applyQuaternion(camera.quaternion);
  // looking straight down, the heading is where the top of the screen points
  const x = Math.abs(dir.y) > 0.999 ? up.x : dir.x;
  const z = Math.abs(dir.y) > 0.999 ? up.z : dir.z;
  return ((Math.atan2(x, -z) * 180) / Math.PI + 360) % 360;
}

export class Hud {
  /** @param {HTMLElement|null} arrow @param {HTMLElement|null} bar @param {HTMLElement|null} label */
  constructor(arrow, bar, label) {
    this.arrow = arrow;
    this.bar = bar;
    this.label = label;
    this.last = '';
  }

  /**
   * @param {THREE.PerspectiveCamera} camera @param {number} distance metres to what is looked at
   * @param {number} heightPx the canvas's height in CSS pixels
   */
  update(camera, distance, heightPx) {
    const heading = headingOf(camera);
    const perPixel = (2 * Math.max(distance, 0.01) * Math.tan((camera.fov * Math.PI) / 360)) / Math.max(heightPx, 1);
    const metres = roundLength(perPixel * BAR_MAX_PX);
    const pixels = Math.round(metres / perPixel);
    const key = `${heading.toFixed(1)}:${metres}:${pixels}`;
    if (key === this.last) return;
    this.last = key;
    if (this.arrow) {
      this.arrow.style.transform = `rotate(${-heading}deg)`;
      this.arrow.parentElement?.setAttribute('aria-label', `North arrow; the view faces ${Math.round(heading)}\u00b0`);
    }
    if (this.bar) this.bar.style.width = `${pixels}px`;
    if (this.label) this.label.textContent = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
  }
}
