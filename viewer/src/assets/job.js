// Following an asset's conversion: GET /api/v1/assets/{id} every second at first, backing off
// to every 5 s while it takes long, until it is ready or failed (or the asset is gone).

export const FIRST_DELAY_MS = 1000;
export const MAX_DELAY_MS = 5000;
const BACKOFF = 1.25;

/** True for the final states of a conversion. @param {string} status */
export function isFinal(status) {
  return status === 'ready' || status === 'failed';
}

/**
 * Poll an asset until its conversion ends.
 * @param {{get: (path: string) => Promise<any>}} api
 * @param {string} assetId
 * @param {{
 *   onUpdate: (asset: any) => void,
 *   onGone?: () => void,
 *   onTrouble?: (error: any) => void,
 *   setTimer?: (fn: () => void, ms: number) => any,
 *   clearTimer?: (handle: any) => void,
 * }} handlers `onUpdate` with every answer (the last one ready or failed); `onGone` when the
 *   asset no longer exists (404: deleted meanwhile); `onTrouble` when a poll fails for another
 *   reason (polling goes on, more slowly)
 * @returns {{stop: () => void}} stops polling (no handler is called after it)
 */
export function followJob(api, assetId, { onUpdate, onGone, onTrouble, setTimer = setTimeout, clearTimer = clearTimeout }) {
  let stopped = false;
  let handle = null;
  let delay = FIRST_DELAY_MS;

  const poll = async () => {
    handle = null;
    if (stopped) return;
    try {
      const asset = await api.get(`/api/v1/assets/${encodeURIComponent(assetId)}`);
      if (stopped) return;
      onUpdate(asset);
      if (isFinal(asset.status)) return;
    } catch (error) {
      if (stopped) return;
      if (error && error.status === 404) {
        if (onGone) onGone();
        return;
      }
      if (onTrouble) onTrouble(error);
      delay = MAX_DELAY_MS;
    }
    delay = Math.min(MAX_DELAY_MS, delay * BACKOFF);
    handle = setTimer(poll, delay);
  };

  handle = setTimer(poll, FIRST_DELAY_MS);
  return {
    stop() {
      stopped = true;
      if (handle !== null) clearTimer(handle);
      handle = null;
    },
  };
}
