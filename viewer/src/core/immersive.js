// WebXR: "Enter VR" (immersive-vr, a headset's browser) puts the user at street level in the
// scene; "Enter AR" (immersive-ar, a phone) shows the overlays around the device, placed from
// its GNSS position and compass. The tiles renderer's scheduler runs on the session's frames
// (a page's requestAnimationFrame stops while a headset shows a session), and the tiles are
// selected for the XR camera, so tiles keep loading as the user moves.
import * as THREE from 'three';
import { Scheduler } from '3d-tiles-renderer';
import { el } from './ui.js';

export const AR_ACCURACY_NOTE =
  'AR places the overlays from this device\u2019s own position and compass. Without RTK positioning that ' +
  'can be several metres off: a phone\u2019s GNSS is typically 3 to 10 m off in a street, its compass ' +
  '5 to 15 degrees (another 2 to 5 m at 20 m). Use it for orientation, not for digging.';

/**
 * Offer VR and AR where the browser supports them.
 * @param {import('./scene.js').Viewer} viewer
 * @param {{vr: HTMLButtonElement|null, ar: HTMLButtonElement|null, note?: HTMLElement|null}} buttons
 * @param {{supported: {vr: boolean, ar: boolean}, session: string|null}} xrState `state.xr`
 * @returns {Promise<void>} resolves when support is known
 */
export async function setupXR(viewer, buttons, xrState) {
  const xr = navigator.xr;
  if (!xr || typeof xr.isSessionSupported !== 'function') return;
  const ask = (mode) => xr.isSessionSupported(mode).catch(() => false);
  const [vr, ar] = await Promise.all([ask('immersive-vr'), ask('immersive-ar')]);
  xrState.supported = { vr: Boolean(vr), ar: Boolean(ar) };
  const immersive = new Immersive(viewer, xrState);
  if (vr && buttons.vr) {
    buttons.vr.hidden = false;
    buttons.vr.addEventListener('click', () => immersive.toggle('immersive-vr', buttons.vr));
  }
  if (ar && buttons.ar) {
    buttons.ar.hidden = false;
    buttons.ar.title = AR_ACCURACY_NOTE;
    buttons.ar.addEventListener('click', () => immersive.toggle('immersive-ar', buttons.ar));
    if (buttons.note) {
      buttons.note.textContent = AR_ACCURACY_NOTE;
      buttons.note.hidden = false;
    }
  }
}

class Immersive {
  constructor(viewer, xrState) {
    this.viewer = viewer;
    this.xrState = xrState;
    this.session = null;
    this.mode = null;
    this.overlay = null;
  }

  async toggle(mode, button) {
    if (this.session) {
      await this.session.end().catch(() => {});
      return;
    }
    button.disabled = true;
    try {
      await this.start(mode);
    } catch (error) {
      this.viewer.onStatus(`${mode === 'immersive-ar' ? 'AR' : 'VR'} could not start: ${error.message}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  async start(mode) {
    const viewer = this.viewer;
    const renderer = viewer.renderer;
    const ar = mode === 'immersive-ar';
    const init = { optionalFeatures: ['local-floor', 'bounded-floor'] };
    if (ar) {
      this.overlay = this.makeOverlay();
      init.optionalFeatures.push('dom-overlay');
      init.domOverlay = { root: this.overlay };
    }
    // AR: where the device is, asked before the session (the permission prompt needs the page)
    const placement = ar ? await devicePlacement() : null;
    const session = await navigator.xr.requestSession(mode, init);
    this.session = session;
    this.mode = mode;
    renderer.xr.setReferenceSpaceType('local-floor');
    await renderer.xr.setSession(session);
    Scheduler.setXRSession(session);
    this.place(placement);
    this.xrState.session = mode;
    session.addEventListener('end', () => this.ended());
    if (ar) {
      this.saved = { tiles: viewer.tileRoot.visible, ground: viewer.ground.visible, clear: renderer.getClearAlpha() };
      viewer.tileRoot.visible = false;
      viewer.ground.visible = false;
      renderer.setClearAlpha(0);
      const where = placement && placement.position
        ? `placed from your position (\u00b1${Math.round(placement.accuracy)} m)${placement.heading === null ? '; no compass: north is where the device faced at the start' : ''}`
        : 'the device\u2019s position is unknown (location not allowed): the overlays are placed as if you stood at the scene\u2019s centre facing north';
      this.overlay.querySelector('.ar-where').textContent = `Overlays ${where}.`;
    }
    viewer.requestRender();
  }

  /**
   * Where the session's floor space stands in the scene: at street level at the scene's centre
   * (VR), or at the device's position and heading (AR). The scene's `world` group carries it, so
   * a pose p of the device is at (R(-heading) p + where) in the local frame; horizontally, VR's
   * floor space is the local frame itself.
   */
  place(placement) {
    const viewer = this.viewer;
    const where = new THREE.Vector3(0, viewer.groundY, 0);
    let heading = 0;
    if (placement && placement.position && viewer.frame) {
      const p = viewer.lonLatHToLocal(placement.position[0], placement.position[1], viewer.groundHeight ?? viewer.origin[2]);
      where.set(p.x, viewer.groundY, p.z);
      heading = placement.heading === null ? 0 : (placement.heading * Math.PI) / 180;
    }
    const rotation = new THREE.Quaternion().setFromAxisAngle(new THREE.Vector3(0, 1, 0), heading);
    viewer.world.quaternion.copy(rotation);
    viewer.world.position.copy(where.clone().negate().applyQuaternion(rotation));
    viewer.world.updateMatrixWorld(true);
  }

  ended() {
    const viewer = this.viewer;
    const renderer = viewer.renderer;
    Scheduler.setXRSession(null);
    viewer.world.position.set(0, 0, 0);
    viewer.world.quaternion.identity();
    viewer.world.updateMatrixWorld(true);
    const xrCamera = renderer.xr.getCamera();
    for (const { tiles } of viewer.tilesets) if (tiles.hasCamera(xrCamera)) tiles.deleteCamera(xrCamera);
    if (this.mode === 'immersive-ar' && this.saved) {
      viewer.tileRoot.visible = this.saved.tiles;
      viewer.ground.visible = this.saved.ground;
      renderer.setClearAlpha(this.saved.clear);
    }
    if (this.overlay) this.overlay.remove();
    this.overlay = null;
    this.session = null;
    this.mode = null;
    this.xrState.session = null;
    viewer.resize();
    viewer.requestRender();
  }

  /** What an AR session shows over the camera image: where it stands, a tiles toggle, exit. */
  makeOverlay() {
    const viewer = this.viewer;
    const toggle = el('input', { type: 'checkbox', id: 'ar-tiles' });
    toggle.addEventListener('change', () => {
      viewer.tileRoot.visible = toggle.checked;
      viewer.requestRender();
    });
    const overlay = el(
      'div',
      { class: 'ar-overlay' },
      el('p', { class: 'ar-where' }),
      el('p', { class: 'ar-note', text: AR_ACCURACY_NOTE }),
      el('label', { for: 'ar-tiles' }, toggle, ' Show the 3D tiles too'),
      el('button', { type: 'button', text: 'Exit AR', onclick: () => this.session && this.session.end() }),
    );
    document.body.append(overlay);
    return overlay;
  }
}

/**
 * The device's position (GNSS) and compass heading, as far as the browser gives them:
 * `{position: [lon, lat] | null, accuracy, heading: degrees clockwise from north | null}`.
 */
async function devicePlacement() {
  const position = await new Promise((resolve) => {
    if (!navigator.geolocation) {
      resolve(null);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lonLat: [p.coords.longitude, p.coords.latitude], accuracy: p.coords.accuracy }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: 8000, maximumAge: 10000 },
    );
  });
  const heading = await new Promise((resolve) => {
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      window.removeEventListener('deviceorientationabsolute', onOrientation);
      resolve(value);
    };
    const onOrientation = (event) => {
      if (typeof event.webkitCompassHeading === 'number') finish(event.webkitCompassHeading);
      else if (event.absolute && typeof event.alpha === 'number') finish((360 - event.alpha) % 360);
    };
    window.addEventListener('deviceorientationabsolute', onOrientation);
    setTimeout(() => finish(null), 1000);
  });
  return { position: position ? position.lonLat : null, accuracy: position ? position.accuracy : 0, heading };
}
