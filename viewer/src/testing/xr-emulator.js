// A WebXR runtime for the browser tests: an emulated Meta Quest 3 (iwer) installed before the
// page's own script runs, so that `navigator.xr` offers immersive-vr and immersive-ar in a
// browser without a headset. Loaded only by tests (as an init script); the page never loads it.
// `window.arserverXRDevice` is the emulated device: a test moves the headset with
// `arserverXRDevice.position.set(x, y, z)` (metres in the session's reference space).
import { XRDevice, metaQuest3 } from 'iwer';

const device = new XRDevice(metaQuest3);
device.installRuntime({ forceInstall: true });
window.arserverXRDevice = device;
