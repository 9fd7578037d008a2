// The comment form: planners on a planned object of an open round, residents on the round
// page (at a place they tapped, or on an object). Posts POST /api/v1/comments.
import { el, showPanel, hidePanel } from './live/panels.js';

/** The longest comment the form takes (the server takes more; short ones are read). */
export const MAX_COMMENT = 2000;

/**
 * Open the comment form in the page's panel.
 * @param {{post: (path: string, body: any) => Promise<any>}} api
 * @param {any} ui the core's ui (`showPanel(title, body)`, `hidePanel()`)
 * @param {{roundId?: string|null, place: {point: number[]} | {assetId: string, featureId?: string|null, point?: number[]},
 *   title?: string, onSent?: (comment: any) => void}} options
 *   `place.point` is [lon, lat, h] (WGS 84, ellipsoidal metres). On an object the comment is
 *   placed on its feature (the feature's own point); without a feature id, at `point`.
 * @returns {{form: HTMLFormElement, close: () => void}}
 */
export function openCommentForm(api, ui, { roundId = null, place, title, onSent }) {
  const id = `comment-text-${Math.random().toString(36).slice(2, 8)}`;
  const text = el('textarea', { id, name: 'text', rows: 5, maxlength: MAX_COMMENT, required: true });
  Object.assign(text.style, { width: '100%', boxSizing: 'border-box', font: 'inherit' });
  const counter = el('span', { class: 'comment-counter', 'aria-live': 'polite', text: `0 / ${MAX_COMMENT}` });
  const message = el('p', { class: 'comment-message', role: 'alert' });
  const send = el('button', { type: 'submit', text: 'Send comment' });
  const cancel = el('button', { type: 'button', text: 'Cancel' });
  const where = place.assetId
    ? `On ${place.featureId ? `object ${place.featureId}` : 'this object'}.`
    : 'At the place you tapped.';
  const form = el(
    'form',
    { class: 'comment-form', novalidate: true },
    el('p', { class: 'comment-where', text: where }),
    el('label', { for: id, text: 'Your comment' }),
    text,
    el('div', { class: 'comment-meta' }, counter),
    message,
    el('div', { class: 'comment-buttons' }, send, ' ', cancel),
  );

  const update = () => {
    const length = text.value.length;
    counter.textContent = `${length} / ${MAX_COMMENT}`;
    send.disabled = text.value.trim().length === 0 || length > MAX_COMMENT;
  };
  text.addEventListener('input', update);
  update();
  const close = () => hidePanel(ui);
  cancel.addEventListener('click', close);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = text.value;
    if (!value.trim()) {
      message.textContent = 'Write something first.';
      return;
    }
    if (value.length > MAX_COMMENT) {
      message.textContent = `A comment has at most ${MAX_COMMENT} characters.`;
      return;
    }
    const body = { text: value };
    if (roundId) body.round = roundId;
    if (place.assetId) {
      body.asset = place.assetId;
      if (place.featureId !== undefined && place.featureId !== null) body.feature = String(place.featureId);
    }
    if (Array.isArray(place.point) && (!place.assetId || body.feature === undefined)) {
      body.location = place.point.filter((v) => typeof v === 'number' && Number.isFinite(v)).slice(0, 3);
    }
    send.disabled = true;
    text.disabled = true;
    message.textContent = 'Sending…';
    try {
      const comment = await api.post('/api/v1/comments', body);
      form.replaceChildren(
        el('p', { class: 'comment-sent', role: 'status', text: 'Thank you: your comment was sent. It appears on the map for others.' }),
        el('button', { type: 'button', text: 'Close', onclick: close }),
      );
      if (onSent) onSent(comment);
    } catch (error) {
      message.textContent = `Not sent: ${error.message}`;
      text.disabled = false;
      update();
    }
  });

  showPanel(ui, title || 'Comment', form);
  text.focus();
  return { form, close };
}
