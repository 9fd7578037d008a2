// The upload form: a drop zone (drag and drop or a file picker, several files at once), one
// card per file with its name, CRS and origin, the fields all files share (layer, lifecycle,
// public), and per file the upload's bytes, then the conversion's progress, then "Open in
// viewer" or what went wrong in plain words.
import { CRS_CHOICES, LOCAL, OTHER, crsValue, isLocalModel, originValue, suggestCrs } from './crs.js';
import { formatBytes, h, percent, progressBar } from './dom.js';
import { plainError } from './errors.js';
import { statusWords, viewerUrl } from './status.js';

const LAYER_KEY = 'arserver-assets-layer';
export const DEFAULT_LAYER = 'demo';

/** The layer used last on this browser, else 'demo'. */
function lastLayer() {
  try {
    return localStorage.getItem(LAYER_KEY) || DEFAULT_LAYER;
  } catch {
    return DEFAULT_LAYER;
  }
}

/** @param {string} layer */
function rememberLayer(layer) {
  try {
    localStorage.setItem(LAYER_KEY, layer);
  } catch {
    // private browsing: the default is used next time
  }
}

/** A file's name without its last extension ("parking_zones.geojson" -> "parking_zones"). */
export function nameOf(fileName) {
  const dot = fileName.lastIndexOf('.');
  return (dot > 0 ? fileName.slice(0, dot) : fileName).slice(0, 200);
}

let serial = 0;

/**
 * The upload section.
 * @param {HTMLElement} container
 * @param {import('../api.js').Api} api
 * @param {import('./store.js').AssetStore} store the list the uploaded assets join (it follows
 *   their conversion)
 * @param {{layers?: () => string[]}} [options] `layers`: known layer names for suggestions
 */
export function uploadSection(container, api, store, { layers = () => [] } = {}) {
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, class: 'visually-hidden' });
  const zone = h(
    'div',
    { class: 'dropzone', id: 'dropzone' },
    h('p', { class: 'dropzone-title', text: 'Drop files here' }),
    h('p', {}, 'or ', h('label', { for: 'file-input', class: 'button', text: 'Choose files' }), input),
    h('p', { class: 'hint', text: 'GeoJSON, CityJSON, glTF/GLB, OBJ, PLY, STL, LAS/LAZ, XYZ; several at once.' }),
  );

  const layerList = h('datalist', { id: 'layer-names' });
  const layer = h('input', { id: 'upload-layer', name: 'layer', value: lastLayer(), list: 'layer-names', required: true, maxlength: 100 });
  const lifecycle = h(
    'select',
    { id: 'upload-lifecycle', name: 'lifecycle' },
    h('option', { value: 'existing', text: 'existing' }),
    h('option', { value: 'planned', text: 'planned' }),
    h('option', { value: 'removed', text: 'removed' }),
  );
  const isPublic = h('input', { type: 'checkbox', id: 'upload-public', name: 'public' });
  const shared = h(
    'fieldset',
    { class: 'shared' },
    h('legend', { text: 'For all files below' }),
    h('div', { class: 'field' }, h('label', { for: 'upload-layer', text: 'Layer' }), layer, layerList),
    h('div', { class: 'field' }, h('label', { for: 'upload-lifecycle', text: 'Lifecycle' }), lifecycle),
    h(
      'div',
      { class: 'field checkbox' },
      isPublic,
      h('label', { for: 'upload-public', text: 'Public (anyone may see it, residents too)' }),
    ),
  );

  const cards = h('ul', { class: 'upload-cards', 'aria-live': 'polite' });
  const start = h('button', { type: 'button', class: 'primary', id: 'upload-start', text: 'Upload', disabled: true });
  const clear = h('button', { type: 'button', id: 'upload-clear', text: 'Clear finished', hidden: true });
  container.replaceChildren(zone, shared, cards, h('div', { class: 'upload-buttons' }, start, ' ', clear));

  /** @type {Set<ReturnType<typeof card>>} */
  const all = new Set();

  const refreshButtons = () => {
    const pending = [...all].filter((c) => c.state === 'pending');
    start.disabled = pending.length === 0 || [...all].some((c) => c.state === 'uploading');
    start.textContent = pending.length > 1 ? `Upload ${pending.length} files` : 'Upload';
    clear.hidden = ![...all].some((c) => c.state === 'ready' || c.state === 'failed');
  };

  const addFiles = (files) => {
    for (const file of files) {
      const c = card(file);
      all.add(c);
      cards.append(c.element);
    }
    refreshButtons();
    const names = new Set([...layers(), layer.value].filter(Boolean));
    layerList.replaceChildren(...[...names].sort().map((n) => h('option', { value: n })));
  };

  input.addEventListener('change', () => {
    addFiles([...input.files]);
    input.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'dragend']) zone.addEventListener(type, () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length) addFiles(files);
  });

  start.addEventListener('click', async () => {
    const layerName = layer.value.trim();
    if (!layerName) {
      layer.focus();
      layer.setCustomValidity('Name a layer.');
      layer.reportValidity();
      return;
    }
    layer.setCustomValidity('');
    rememberLayer(layerName);
    const common = { layer: layerName, lifecycle: lifecycle.value, public: isPublic.checked };
    const pending = [...all].filter((c) => c.state === 'pending');
    start.disabled = true;
    for (const c of pending) {
      if (c.state === 'pending') await c.upload(common); // one at a time: the bytes of one file at full speed
    }
    refreshButtons();
  });

  clear.addEventListener('click', () => {
    for (const c of [...all]) {
      if (c.state === 'ready' || c.state === 'failed') {
        c.dispose();
        all.delete(c);
      }
    }
    refreshButtons();
  });

  /**
   * One file's card.
   * @param {File} file
   */
  function card(file) {
    serial += 1;
    const id = `upload-${serial}`;
    const name = h('input', { id: `${id}-name`, name: 'name', value: nameOf(file.name), maxlength: 200, required: true });
    const crs = h(
      'select',
      { id: `${id}-crs`, name: 'crs' },
      CRS_CHOICES.map((c) => h('option', { value: c.value, text: c.label })),
    );
    const custom = h('input', { id: `${id}-crs-other`, name: 'crs-other', placeholder: 'EPSG:3035', maxlength: 20 });
    const origin = h('input', { id: `${id}-origin`, name: 'origin', placeholder: '4.7610, 52.3095, 39.6', inputmode: 'decimal' });
    const heading = h('input', { id: `${id}-heading`, name: 'heading', type: 'number', step: 'any', min: '-360', max: '360', value: '0' });
    const crsWhy = h('span', { class: 'hint', id: `${id}-crs-why` });
    const otherField = h('div', { class: 'field' }, h('label', { for: custom.id, text: 'EPSG code' }), custom);
    const originField = h(
      'div',
      { class: 'field wide' },
      h('label', { for: origin.id, text: 'Origin: longitude, latitude, height' }),
      origin,
      h('span', {
        class: 'hint',
        text: 'Where the model\u2019s 0,0,0 stands: degrees (ETRS89 / WGS 84) and ellipsoidal height in metres (in the Netherlands about 43 m more than NAP).',
      }),
    );
    const headingField = h(
      'div',
      { class: 'field' },
      h('label', { for: heading.id, text: 'Heading (degrees clockwise from north)' }),
      heading,
    );
    const fields = h(
      'div',
      { class: 'card-fields' },
      h('div', { class: 'field' }, h('label', { for: name.id, text: 'Name' }), name),
      h('div', { class: 'field' }, h('label', { for: crs.id, text: 'Coordinates (CRS)' }), crs, crsWhy),
      otherField,
      originField,
      headingField,
    );
    const remove = h('button', { type: 'button', class: 'card-remove', 'aria-label': `Remove ${file.name}`, text: 'Remove' });
    const bar = progressBar(`Upload of ${file.name}`);
    const message = h('div', { class: 'card-message', role: 'status' });
    const actions = h('div', { class: 'card-actions' });
    const element = h(
      'li',
      { class: 'upload-card', 'data-file': file.name, 'data-state': 'pending' },
      h('div', { class: 'card-head' }, h('strong', { text: file.name }), h('span', { class: 'size', text: formatBytes(file.size) }), remove),
      fields,
      h('div', { class: 'card-progress', hidden: true }, bar.element),
      message,
      actions,
    );
    const progressBox = element.querySelector('.card-progress');

    const showPlacement = () => {
      otherField.hidden = crs.value !== OTHER;
      originField.hidden = crs.value !== LOCAL;
      headingField.hidden = crs.value !== LOCAL;
    };
    crs.addEventListener('change', () => {
      crsWhy.textContent = '';
      showPlacement();
    });
    crs.value = isLocalModel(file.name) ? LOCAL : crs.value;
    showPlacement();
    suggestCrs(file).then((suggestion) => {
      if (entry.state !== 'pending' || crs.dataset.touched) return;
      crs.value = suggestion.value;
      if (suggestion.custom) custom.value = suggestion.custom;
      crsWhy.textContent = suggestion.why ? `(${suggestion.why})` : '';
      showPlacement();
    });
    crs.addEventListener('input', () => {
      crs.dataset.touched = '1';
    });

    let unsubscribe = null;
    const entry = {
      element,
      /** pending | uploading | converting | ready | failed */
      state: 'pending',
      /** The asset once the server took the upload. */
      asset: null,
      setState(state) {
        entry.state = state;
        element.dataset.state = state;
        const editable = state === 'pending';
        for (const control of fields.querySelectorAll('input, select')) control.disabled = !editable;
        remove.hidden = !editable;
        refreshButtons();
      },
      say(text, kind = 'info', extra = []) {
        message.className = `card-message ${kind}`;
        message.setAttribute('role', kind === 'error' ? 'alert' : 'status');
        message.replaceChildren(...(text ? [h('p', { text })] : []), ...extra);
      },
      /** The form fields for POST /api/v1/assets (throws an Error with what to fix). */
      form(common) {
        const form = new FormData();
        form.append('file', file, file.name);
        const title = name.value.trim();
        if (!title) throw new Error('Give the asset a name.');
        form.append('name', title);
        const code = crsValue(crs.value, custom.value);
        if (code) form.append('crs', code);
        if (crs.value === LOCAL) {
          if (!origin.value.trim()) throw new Error('A model in local metres needs an origin: where its 0,0,0 stands.');
          form.append('origin', originValue(origin.value));
          const turn = Number(heading.value || 0);
          if (!Number.isFinite(turn)) throw new Error('The heading is a number of degrees.');
          if (turn) form.append('heading', String(turn));
        }
        form.append('layer', common.layer);
        form.append('lifecycle', common.lifecycle);
        form.append('public', common.public ? 'true' : 'false');
        return form;
      },
      async upload(common) {
        let form;
        try {
          form = entry.form(common);
        } catch (error) {
          entry.say(error.message, 'error');
          return;
        }
        entry.setState('uploading');
        progressBox.hidden = false;
        bar.set(0, `Uploading: 0 of ${formatBytes(file.size)}`);
        entry.say('');
        try {
          const asset = await api.upload('/api/v1/assets', form, (fraction) => {
            bar.set(fraction, `Uploading: ${formatBytes(file.size * fraction)} of ${formatBytes(file.size)} (${percent(fraction)})`);
          });
          entry.asset = asset;
          entry.setState('converting');
          unsubscribe = store.subscribe((event) => {
            if (event.type === 'change' && event.asset.id === asset.id) entry.show(event.asset);
            if (event.type === 'remove' && event.id === asset.id) entry.gone();
          });
          entry.show(asset);
          store.upsert(asset);
        } catch (error) {
          progressBox.hidden = true;
          entry.setState('pending');
          const plain = plainError(error.message, error.status);
          entry.say(`Not uploaded: ${plain.title}`, 'error', errorDetails(plain));
        }
      },
      /** Show the conversion state of the uploaded asset. */
      show(asset) {
        entry.asset = asset;
        if (asset.status === 'queued' || asset.status === 'processing') {
          bar.set(asset.status === 'queued' ? null : asset.progress, statusWords(asset));
          return;
        }
        progressBox.hidden = true;
        if (unsubscribe) unsubscribe();
        unsubscribe = null;
        if (asset.status === 'ready') {
          entry.setState('ready');
          entry.say(`Ready: "${asset.name}" is converted to 3D Tiles.`, 'ok');
          actions.replaceChildren(h('a', { class: 'button primary', href: viewerUrl(asset.id), text: 'Open in viewer' }));
        } else {
          entry.setState('failed');
          const plain = plainError(asset.error);
          entry.say(`Conversion failed: ${plain.title}`, 'error', errorDetails(plain));
          const again = h('button', { type: 'button', text: 'Change and upload again' });
          again.addEventListener('click', () => {
            actions.replaceChildren();
            entry.say('');
            entry.setState('pending');
          });
          actions.replaceChildren(again);
        }
      },
      gone() {
        if (unsubscribe) unsubscribe();
        unsubscribe = null;
        progressBox.hidden = true;
        entry.setState('failed');
        entry.say('The asset was deleted.', 'info');
        actions.replaceChildren();
      },
      dispose() {
        if (unsubscribe) unsubscribe();
        element.remove();
      },
    };
    remove.addEventListener('click', () => {
      entry.dispose();
      all.delete(entry);
      refreshButtons();
    });
    return entry;
  }

  return { addFiles };
}

/** The advice and the server's own words under an error. @param {import('./errors.js').PlainError} plain */
function errorDetails(plain) {
  return [
    plain.advice ? h('p', { class: 'advice', text: plain.advice }) : null,
    plain.detail ? h('p', { class: 'detail' }, h('span', { text: 'The server said: ' }), h('q', { text: plain.detail })) : null,
  ].filter(Boolean);
}
