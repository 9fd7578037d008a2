// Small DOM helpers for the assets page and the round page: elements from attributes and
// children (text is always text, never markup), readable dates, byte sizes and percentages.

/**
 * Create an element.
 * @param {string} tag
 * @param {Record<string, any>} [attributes] `class`, `text` (text content), `on<event>` handlers,
 *   anything else as an attribute (`true` as an empty attribute; false, null, undefined left out)
 * @param {...(Node|string|number|null|undefined|false|Array<any>)} children
 * @returns {HTMLElement}
 */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A readable local date and time ('' for nothing). @param {string|number|Date|null|undefined} time */
export function formatTime(time) {
  if (time === null || time === undefined || time === '') return '';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return String(time);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** A readable size: "840 B", "12.5 KB", "3.2 MB". @param {number} bytes */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A fraction 0..1 as a whole percentage "42 %". @param {number} fraction */
export function percent(fraction) {
  const value = Math.max(0, Math.min(1, Number(fraction) || 0));
  return `${Math.round(value * 100)} %`;
}

/**
 * A progress bar (a real <progress> with a text beside it for screen readers and copy).
 * @param {string} label what the bar measures, for assistive technology
 * @returns {{element: HTMLElement, set: (fraction: number|null, text?: string) => void}}
 *   `set(null, text)` shows an indeterminate bar
 */
export function progressBar(label) {
  const bar = h('progress', { max: '1', 'aria-label': label });
  const text = h('span', { class: 'progress-text' });
  const element = h('span', { class: 'progress' }, bar, text);
  return {
    element,
    set(fraction, words = '') {
      if (fraction === null || fraction === undefined) bar.removeAttribute('value');
      else bar.value = Math.max(0, Math.min(1, fraction));
      text.textContent = words;
    },
  };
}
