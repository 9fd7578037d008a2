// /viewer/assets: the GIS staff's page. Lists the assets, uploads new ones (drag and drop),
// follows their conversion and opens them in the viewer; roles that may not change assets get
// the list read-only. The token comes from the address fragment (#access_token=...) or the
// box the page shows without one, and stays in this tab's sessionStorage.
import { Api, ApiError, tokenFromPage } from './api.js';
import { h } from './assets/dom.js';
import { AssetStore } from './assets/store.js';
import { assetTable } from './assets/table.js';
import { uploadSection } from './assets/upload.js';

const TOKEN_KEY = 'arserver-token';

/** What the page does, for the browser tests: `window.arassets.state`. */
const state = { ready: false, role: null, canChange: false, assets: 0, errors: [] };

/** The token box: shown when there is no token, or it was refused. @param {string} why */
function tokenBox(why) {
  const input = h('input', { id: 'token-input', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
  const form = h(
    'form',
    { class: 'token-box', id: 'token-box' },
    h('p', { text: why }),
    h('label', { for: 'token-input', text: 'Access token' }),
    ' ',
    input,
    ' ',
    h('button', { type: 'submit', class: 'primary', text: 'Use token' }),
    h('p', { class: 'hint', text: 'The token is kept in this browser tab only, until you close it.' }),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    window.location.reload();
  });
  return form;
}

/** @param {HTMLElement} box @returns {(text: string, kind?: 'error'|'info') => void} */
function messenger(box) {
  let timer = null;
  return (text, kind = 'info') => {
    box.className = `page-message ${kind}`;
    box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    box.textContent = text;
    if (kind === 'error') state.errors.push(text);
    clearTimeout(timer);
    if (kind === 'info') timer = setTimeout(() => { box.textContent = ''; }, 6000);
  };
}

async function main() {
  const who = document.getElementById('who');
  const access = document.getElementById('access');
  const uploadBox = document.getElementById('upload');
  const listBox = document.getElementById('list');
  const filter = /** @type {HTMLInputElement} */ (document.getElementById('layer-filter'));
  const filterForm = document.getElementById('filter');
  const reload = document.getElementById('reload');
  const say = messenger(document.getElementById('message'));

  const token = tokenFromPage();
  const api = new Api(token);
  let identity = null;
  if (!token) {
    access.replaceChildren(tokenBox('Without a token only public assets are listed. Give a token of role gis or admin to upload.'));
  } else {
    try {
      identity = await api.whoami();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        api.token = '';
        access.replaceChildren(tokenBox('This token is not valid (any more): it is unknown, expired or revoked. Give another one.'));
      } else {
        say(`Who this token is could not be read: ${error.message}`, 'error');
      }
    }
  }
  const canChange = api.can('change_assets');
  state.role = identity ? identity.role : null;
  state.canChange = canChange;
  who.textContent = identity ? `Signed in as ${identity.name} (role ${identity.role})` : 'Not signed in: public assets only';

  const store = new AssetStore(api);
  if (canChange) {
    uploadSection(uploadBox, api, store, { layers: () => [...new Set(store.list().map((a) => a.layer))] });
  } else {
    const role = identity ? `role ${identity.role}` : 'no token';
    uploadBox.replaceChildren(
      h('p', {
        class: 'read-only',
        id: 'read-only',
        text: `You can look at the assets, but not upload, change or delete them: that needs a token of role gis or admin (this page has ${role}).`,
      }),
    );
  }

  assetTable(listBox, store, { canChange, onMessage: say });
  const params = new URLSearchParams(window.location.search);
  filter.value = params.get('layer') || '';
  const load = async () => {
    listBox.setAttribute('aria-busy', 'true');
    try {
      await store.load({ layer: filter.value.trim() });
    } catch (error) {
      say(`The assets could not be listed: ${error.message}`, 'error');
    } finally {
      listBox.removeAttribute('aria-busy');
    }
  };
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams(window.location.search);
    if (filter.value.trim()) query.set('layer', filter.value.trim());
    else query.delete('layer');
    const search = query.toString();
    history.replaceState(null, '', window.location.pathname + (search ? `?${search}` : ''));
    load();
  });
  reload.addEventListener('click', load);
  store.subscribe(() => {
    state.assets = store.assets.size;
  });
  await load();
  state.ready = true;
}

window.arassets = { state };
main().catch((error) => {
  state.errors.push(String(error && error.message ? error.message : error));
  const box = document.getElementById('message');
  if (box) {
    box.className = 'page-message error';
    box.textContent = `The page could not start: ${error.message || error}`;
  }
});
