// Immersive mode: "Enter VR" puts the planner at street level in the scene; "Enter AR" shows
// the overlays around the device, placed from its position. Tiles keep loading in a session
// because the tiles renderer schedules its work on the session's frames.
import { Scheduler } from '3d-tiles-renderer/core';

/** What the AR page says about placement (also in docs/viewer.md). */
export const AR_ACCURACY =
  'AR places the overlays from this device\u2019s position: a phone\u2019s GNSS is typically 3\u201310 m off ' +
  '(more between tall buildings), and the start heading is assumed to be north, so face north when you ' +
  'start. Without RTK positioning use AR for orientation, not for digging.';

/**
 * Show the VR/AR buttons the browser supports and run the sessions.
 * @param {import('./viewer.js').Viewer} viewer
 * @param {{vr: HTMLButtonElement, ar: HTMLButtonElement, note: HTMLElement}} buttons
 * @param {Record<string, any>} state window.arviewer.state (its `xr`)
 */
export async function installXR(viewer, buttons, state) {
  const xr = navigator.xr;
  if (!xr) return;
  const [vr, ar] = await Promise.all([
    xr.isSessionSupported('immersive-vr').catch(() => false),
    xr.isSessionSupported('immersive-ar').catch(() => false),
  ]);
  state.xr.supported = { vr, ar };
  buttons.vr.hidden = !vr;
  buttons.ar.hidden = !ar;
  buttons.vr.addEventListener('click', () => start(viewer, 'immersive-vr', state, buttons));
  buttons.ar.addEventListener('click', () => start(viewer, 'immersive-ar', state, buttons));
}

async function start(viewer, mode, state, buttons) {
  if (state.xr.session) {
    await viewer.renderer.xr.getSession()?.end();
    return;
  }
  const session = await navigator.xr.requestSession(mode, { optionalFeatures: ['local-floor'] });
  const { renderer } = viewer;
  renderer.xr.setReferenceSpaceType('local-floor');
  await renderer.xr.setSession(session);
  Scheduler.setXRSession(session);
  state.xr.session = mode;
  const label = mode === 'immersive-vr' ? buttons.vr : buttons.ar;
  label.textContent = mode === 'immersive-vr' ? 'Exit VR' : 'Exit AR';
  let standAt = viewer.controls.target.clone().setY(0); // street level under the view's centre
  const tileGroups = viewer.tilesets.map((t) => t.tiles.group);
  if (mode === 'immersive-ar') {
    buttons.note.textContent = AR_ACCURACY;
    buttons.note.hidden = false;
    for (const group of tileGroups) group.visible = false; // the real world is the scene
    renderer.setClearAlpha(0);
    const here = await devicePosition();
    if (here) standAt = viewer.lonLatHToLocal(here[0], here[1], viewer.origin[2]).setY(0);
  }
  // The user stands at `standAt`: move the reference space, never the world.
  const base = renderer.xr.getReferenceSpace();
  const offset = base.getOffsetReferenceSpace(
    new XRRigidTransform({ x: standAt.x, y: standAt.y, z: standAt.z, w: 1 }),
  );
  renderer.xr.setReferenceSpace(offset);
  session.addEventListener('end', () => {
    Scheduler.setXRSession(null);
    viewer.leaveXR();
    state.xr.session = null;
    label.textContent = mode === 'immersive-vr' ? 'Enter VR' : 'Enter AR';
    for (const group of tileGroups) group.visible = true;
    renderer.setClearAlpha(1);
    buttons.note.hidden = true;
  });
}

/** The device's [lon, lat] from the browser, or null when refused or not offered. */
function devicePosition() {
  if (!navigator.geolocation) return Promise.resolve(null);
  return new Promise((resolve) => {
    navigator.geolocation.getCurrentPosition(
      (p) => resolve([p.coords.longitude, p.coords.latitude]),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: 10000 },
    );
  });
}
