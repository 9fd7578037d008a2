// An asset's conversion state as the page shows it: a word, a progress bar while it
// converts, the error in plain words when it failed.
import { h, percent, progressBar } from './dom.js';
import { plainError } from './errors.js';

/** The viewer's address for one asset. @param {string} id */
export function viewerUrl(id) {
  return `/viewer?asset=${encodeURIComponent(id)}`;
}

/** A short sentence for a state. @param {any} asset */
export function statusWords(asset) {
  switch (asset.status) {
    case 'queued':
      return 'Queued: waiting for the converter';
    case 'processing':
      return `Converting${asset.stage ? ` (${asset.stage})` : ''}: ${percent(asset.progress)}`;
    case 'ready':
      return 'Ready';
    case 'failed':
      return `Failed: ${plainError(asset.error).title}`;
    default:
      return String(asset.status || 'unknown');
  }
}

/**
 * The status of an asset: word, bar (queued, processing), error details (failed).
 * @param {any} asset an AssetOut of the API
 * @returns {HTMLElement}
 */
export function statusView(asset) {
  const box = h('div', { class: `status status-${asset.status}`, 'data-status': asset.status });
  if (asset.status === 'queued' || asset.status === 'processing') {
    const bar = progressBar(`Conversion of ${asset.name}`);
    bar.set(asset.status === 'queued' ? null : asset.progress, statusWords(asset));
    box.append(bar.element);
  } else if (asset.status === 'failed') {
    const plain = plainError(asset.error);
    box.append(
      h('span', { class: 'status-word', text: `Failed: ${plain.title}` }),
      plain.advice ? h('span', { class: 'status-advice', text: plain.advice }) : null,
      plain.detail ? h('details', {}, h('summary', { text: 'What the server said' }), h('p', { text: plain.detail })) : null,
    );
  } else {
    box.append(h('span', { class: 'status-word', text: statusWords(asset) }));
  }
  return box;
}
