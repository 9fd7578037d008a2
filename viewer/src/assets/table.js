// The table of assets: name, layer, lifecycle, public, conversion state, created, and the
// actions (open in the viewer; for roles that may change assets also lifecycle, public and
// delete, with a confirmation). Rows change in place as conversions progress.
import { confirmDialog } from './dialog.js';
import { formatTime, h } from './dom.js';
import { statusView, viewerUrl } from './status.js';

const LIFECYCLES = ['existing', 'planned', 'removed'];

/**
 * Render the table of `store` into `container` and keep it current.
 * @param {HTMLElement} container
 * @param {import('./store.js').AssetStore} store
 * @param {{canChange: boolean, onMessage: (text: string, kind?: 'error'|'info') => void}} options
 *   `canChange`: show lifecycle and public as controls, and delete; `onMessage`: tell the user
 * @returns {{refresh: () => Promise<void>}}
 */
export function assetTable(container, store, { canChange, onMessage }) {
  const body = h('tbody');
  const empty = h('p', { class: 'empty', text: 'No assets yet.' });
  const caption = h('caption', { class: 'visually-hidden', text: 'Assets, newest first' });
  const table = h(
    'table',
    { class: 'assets-table' },
    caption,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Name', 'Layer', 'Lifecycle', 'Public', 'Status', 'Created', 'Actions'].map((t) => h('th', { scope: 'col', text: t })),
      ),
    ),
    body,
  );
  const more = h('button', { type: 'button', class: 'more' });
  const footer = h('p', { class: 'table-footer' });
  container.replaceChildren(table, empty, footer);

  /** @type {Map<string, HTMLTableRowElement>} */
  const rows = new Map();

  const row = (asset) => {
    const lifecycle = canChange
      ? h(
          'select',
          { 'aria-label': `Lifecycle of ${asset.name}`, 'data-field': 'lifecycle' },
          LIFECYCLES.map((l) => h('option', { value: l, text: l, selected: l === asset.lifecycle })),
        )
      : h('span', { text: asset.lifecycle });
    const isPublic = canChange
      ? h('input', { type: 'checkbox', 'aria-label': `${asset.name} is public`, 'data-field': 'public', checked: asset.public })
      : h('span', { text: asset.public ? 'yes' : 'no' });
    if (canChange) {
      lifecycle.addEventListener('change', () => change(asset, { lifecycle: lifecycle.value }));
      isPublic.addEventListener('change', () => change(asset, { public: isPublic.checked }));
    }
    const open =
      asset.status === 'ready'
        ? h('a', { class: 'button', href: viewerUrl(asset.id), text: 'Open in viewer' })
        : null;
    const remove = canChange
      ? h('button', { type: 'button', class: 'danger', 'data-field': 'delete', text: 'Delete', 'aria-label': `Delete ${asset.name}` })
      : null;
    if (remove) remove.addEventListener('click', () => askDelete(asset, remove));
    return h(
      'tr',
      { 'data-asset': asset.id, 'data-status': asset.status },
      h('th', { scope: 'row', class: 'name' }, h('span', { text: asset.name }), h('span', { class: 'asset-id', text: asset.id })),
      h('td', { text: asset.layer }),
      h('td', {}, lifecycle),
      h('td', {}, isPublic),
      h('td', {}, statusView(asset)),
      h('td', {}, h('time', { datetime: asset.created_at, text: formatTime(asset.created_at) })),
      h('td', { class: 'actions' }, open, remove),
    );
  };

  const change = async (asset, changes) => {
    try {
      await store.change(asset.id, changes);
      onMessage(`Saved: ${asset.name}.`, 'info');
    } catch (error) {
      onMessage(`Not saved (${asset.name}): ${error.message}`, 'error');
      const current = store.assets.get(asset.id);
      if (current) put(current); // show what is stored again
    }
  };

  const askDelete = async (asset, button) => {
    const yes = await confirmDialog({
      title: `Delete "${asset.name}"?`,
      message: 'The asset, its tiles and the uploaded file are removed for everyone. This cannot be undone.',
      confirm: 'Delete',
    });
    if (!yes) {
      button.focus();
      return;
    }
    button.disabled = true;
    try {
      await store.remove(asset.id);
      onMessage(`Deleted: ${asset.name}.`, 'info');
    } catch (error) {
      button.disabled = false;
      onMessage(`Not deleted (${asset.name}): ${error.message}`, 'error');
    }
  };

  /** Put a row in place of the old one (keeping focus on the control that had it). */
  const put = (asset) => {
    const fresh = row(asset);
    const old = rows.get(asset.id);
    if (old) {
      const focused = old.contains(document.activeElement) ? document.activeElement?.getAttribute('data-field') : null;
      old.replaceWith(fresh);
      if (focused) fresh.querySelector(`[data-field="${focused}"]`)?.focus();
    } else {
      const list = store.list();
      const index = list.findIndex((a) => a.id === asset.id);
      const next = list.slice(index + 1).find((a) => rows.has(a.id));
      body.insertBefore(fresh, next ? rows.get(next.id) : null);
    }
    rows.set(asset.id, fresh);
  };

  const renderAll = () => {
    rows.clear();
    body.replaceChildren();
    for (const asset of store.list()) {
      const r = row(asset);
      rows.set(asset.id, r);
      body.append(r);
    }
    footerText();
  };

  const footerText = () => {
    const count = store.assets.size;
    empty.hidden = count > 0;
    table.hidden = count === 0;
    const next = store.nextLimit();
    footer.replaceChildren();
    if (count > 0) footer.append(`${count} asset${count === 1 ? '' : 's'}${store.layer ? ` in layer ${store.layer}` : ''}, newest first. `);
    if (store.more && next) {
      more.textContent = `Show up to ${next}`;
      footer.append(more);
    } else if (store.more) {
      footer.append(`Only the newest ${store.limit} are listed; narrow the list by layer.`);
    }
  };

  more.addEventListener('click', async () => {
    const next = store.nextLimit();
    if (!next) return;
    more.disabled = true;
    try {
      await store.load({ limit: next });
    } catch (error) {
      onMessage(`The list could not be loaded: ${error.message}`, 'error');
    } finally {
      more.disabled = false;
    }
  });

  store.subscribe((event) => {
    if (event.type === 'list') renderAll();
    else if (event.type === 'change') {
      put(event.asset);
      footerText();
    } else if (event.type === 'remove') {
      rows.get(event.id)?.remove();
      rows.delete(event.id);
      footerText();
    }
  });

  return {
    async refresh() {
      await store.load();
    },
  };
}
