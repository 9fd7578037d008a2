// The page's shared bits of interface: the side panel (`#panel`) that picks open, the status
// line (`#status`), and the token box shown when the address carries no token.

/**
 * Make an element: `el('p', {class: 'x', text: 'hello'}, child, ...)`.
 * @param {string} tag @param {Record<string, any>} [attributes] @param {...(Node|string|null)} children
 * @returns {HTMLElement}
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/**
 * Open the side panel with a title and a body (a node, or an HTML string of our own making:
 * never pass text from the server as HTML).
 * @param {string} title @param {Node|string} htmlOrNode
 * @returns {HTMLElement} the panel's body, to append to
 */
export function showPanel(title, htmlOrNode) {
  const panel = document.getElementById('panel');
  const body = el('div', { class: 'panel-body' });
  if (typeof htmlOrNode === 'string') body.innerHTML = htmlOrNode;
  else if (htmlOrNode) body.append(htmlOrNode);
  const close = el('button', { type: 'button', class: 'panel-close', 'aria-label': 'Close panel', text: '\u00d7', onclick: hidePanel });
  panel.replaceChildren(el('header', {}, el('h2', { id: 'panel-title', text: title }), close), body);
  panel.setAttribute('aria-labelledby', 'panel-title');
  panel.hidden = false;
  return body;
}

/** Close the side panel. */
export function hidePanel() {
  const panel = document.getElementById('panel');
  if (panel) {
    panel.hidden = true;
    panel.replaceChildren();
  }
}

/** What other modules get as `ui`: the panel and a container for their own boxes. */
export const ui = { showPanel, hidePanel, container: document.body };

/**
 * Set the status line.
 * @param {string} text @param {'info'|'error'|boolean} [kind] (true: an error)
 */
export function setStatus(text, kind = 'info') {
  const status = document.getElementById('status');
  if (!status) return;
  if (kind === true) kind = 'error';
  if (kind !== 'error' && status.dataset.kind === 'error' && !status.hidden) return; // errors stay
  status.textContent = text;
  status.dataset.kind = kind;
  status.hidden = !text;
}

/**
 * A user-visible error: in the status line and in `window.arviewer.state.errors`.
 * @param {string} message
 */
export function showError(message) {
  setStatus(message, 'error');
  const state = window.arviewer && window.arviewer.state;
  if (state && Array.isArray(state.errors) && !state.errors.includes(message)) state.errors.push(message);
}

/**
 * Ask for a token (the page was opened without one). Resolves with the token typed in, or ''
 * when the visitor goes on without one (public assets only). The token is kept in this tab's
 * sessionStorage only.
 * @returns {Promise<string>}
 */
export function askForToken() {
  return new Promise((resolve) => {
    const input = el('input', { id: 'token-input', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
    const form = el(
      'form',
      { class: 'token-box', 'aria-labelledby': 'token-title' },
      el('h2', { id: 'token-title', text: 'Access token' }),
      el('p', { text: 'This page shows what your access token lets you see. Paste the token you were given (it starts with "ars_"). It stays in this browser tab only.' }),
      el('label', { for: 'token-input', text: 'Token' }),
      input,
      el('div', { class: 'token-actions' },
        el('button', { type: 'submit', text: 'Open' }),
        el('button', { type: 'button', class: 'secondary', text: 'Continue without a token', onclick: () => done('') })),
    ); // prettier-ignore
    const overlay = el('div', { class: 'token-overlay' }, form);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (token) sessionStorage.setItem('arserver-token', token);
      done(token);
    });
    function done(token) {
      overlay.remove();
      resolve(token);
    }
    document.body.append(overlay);
    input.focus();
  });
}

/**
 * A table of a feature's properties.
 * @param {Record<string, any>} properties
 * @returns {HTMLTableElement}
 */
export function propertyTable(properties) {
  const table = el('table', { class: 'properties' });
  const body = el('tbody');
  const entries = Object.entries(properties);
  for (const [key, value] of entries.slice(0, MAX_ROWS)) {
    body.append(el('tr', {}, el('th', { scope: 'row', text: cut(key) }), el('td', { text: cut(formatValue(value)) })));
  }
  if (entries.length > MAX_ROWS) {
    body.append(el('tr', {}, el('td', { colspan: '2', text: `\u2026 and ${entries.length - MAX_ROWS} more attributes` })));
  }
  table.append(body);
  return table;
}

/** A panel shows at most this many attributes, each value cut at MAX_TEXT characters. */
const MAX_ROWS = 200;
const MAX_TEXT = 2000;

function cut(text) {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}\u2026 (${text.length} characters)` : text;
}

function formatValue(value) {
  if (value === null || value === undefined) return '\u2014';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Math.round(value * 1000) / 1000);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) return value.map(formatValue).join(', ');
  return String(value);
}
