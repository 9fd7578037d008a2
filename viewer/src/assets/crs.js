// How an upload is placed: the CRS choices of the upload form, the kinds of file that are
// models in local metres (placed at an origin), and the CRS a GeoJSON or CityJSON file names.

/** The value of the CRS choice that means "the file is a model in local metres". */
export const LOCAL = 'local';
/** The value of the CRS choice that means "send no CRS: the file says it". */
export const FROM_FILE = 'file';
/** The value of the CRS choice that means "type an EPSG code". */
export const OTHER = 'other';

/** The CRS choices, the default first. */
export const CRS_CHOICES = [
  { value: 'EPSG:7415', label: 'RD New + NAP height (EPSG:7415)' },
  { value: 'EPSG:28992', label: 'RD New, no heights (EPSG:28992)' },
  { value: 'EPSG:4326', label: 'WGS 84 lon, lat (EPSG:4326)' },
  { value: 'EPSG:4979', label: 'WGS 84 lon, lat, ellipsoidal height (EPSG:4979)' },
  { value: 'EPSG:4258', label: 'ETRS89 lon, lat (EPSG:4258)' },
  { value: 'EPSG:4937', label: 'ETRS89 lon, lat, ellipsoidal height (EPSG:4937)' },
  { value: FROM_FILE, label: 'As the file says' },
  { value: LOCAL, label: 'Local model in metres (placed at an origin)' },
  { value: OTHER, label: 'Other: EPSG code' },
];

export const DEFAULT_CRS = 'EPSG:7415';

/** File name endings of models in their own local metres (no CRS): they need an origin. */
const MODEL_ENDINGS = ['.glb', '.gltf', '.obj', '.stl', '.ply'];
/** File name endings that may carry their CRS in a header the page does not read. */
const SELF_DESCRIBED = ['.las', '.laz'];
/** Only this much of a JSON file is read to find its CRS. */
const SNIFF_BYTES = 64 * 1024;

/** @param {string} name */
function ending(name) {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot).toLowerCase();
}

/** True for a model format in local metres (glb, glTF, OBJ, STL, PLY). @param {string} name */
export function isLocalModel(name) {
  return MODEL_ENDINGS.includes(ending(name));
}

/**
 * An "EPSG:N" from the names CRS members use: "urn:ogc:def:crs:EPSG::28992",
 * "http://www.opengis.net/def/crs/EPSG/0/7415", "EPSG:4326"; null when none.
 * @param {unknown} text
 */
export function epsgOf(text) {
  if (typeof text !== 'string') return null;
  if (/crs84|crs:84/i.test(text)) return 'EPSG:4326';
  const match = text.match(/EPSG(?::+|\/\d+\/)(\d+)/i);
  return match ? `EPSG:${match[1]}` : null;
}

/**
 * The CRS a file names, read from its first 64 KiB (GeoJSON `crs.properties.name`, CityJSON
 * `metadata.referenceSystem`), as a CRS choice value.
 * @param {File} file
 * @returns {Promise<{value: string, custom?: string, why: string}>} `value` one of
 *   CRS_CHOICES (OTHER with `custom` for a code not in the list); `why` says how it was chosen
 */
export async function suggestCrs(file) {
  const end = ending(file.name);
  if (MODEL_ENDINGS.includes(end)) return { value: LOCAL, why: 'a model in local metres: give its origin' };
  if (SELF_DESCRIBED.includes(end)) return { value: FROM_FILE, why: 'point clouds usually name their CRS' };
  if (!['.geojson', '.json', '.cityjson'].includes(end)) return { value: DEFAULT_CRS, why: '' };
  let head = '';
  try {
    head = await file.slice(0, SNIFF_BYTES).text();
  } catch {
    return { value: DEFAULT_CRS, why: '' };
  }
  const named = findCrsName(head);
  const code = epsgOf(named);
  if (code) {
    const known = CRS_CHOICES.some((c) => c.value === code);
    return known
      ? { value: code, why: 'named in the file' }
      : { value: OTHER, custom: code, why: 'named in the file' };
  }
  if (/"type"\s*:\s*"(FeatureCollection|Feature)"/.test(head) && !/"crs"\s*:/.test(head)) {
    return { value: 'EPSG:4326', why: 'GeoJSON without a crs member is WGS 84' };
  }
  return { value: DEFAULT_CRS, why: '' };
}

/** The CRS name in a (possibly cut off) GeoJSON or CityJSON text; null when none. @param {string} text */
function findCrsName(text) {
  try {
    const doc = JSON.parse(text);
    return doc?.crs?.properties?.name || doc?.metadata?.referenceSystem || null;
  } catch {
    // cut off at SNIFF_BYTES: look for the members in the text
  }
  const geojson = text.match(/"crs"\s*:\s*\{[^{}]*"properties"\s*:\s*\{[^{}]*"name"\s*:\s*"([^"]+)"/);
  if (geojson) return geojson[1];
  const city = text.match(/"referenceSystem"\s*:\s*"([^"]+)"/);
  return city ? city[1] : null;
}

/**
 * The `crs` form value for a choice; null when none is sent (from the file, or a local model).
 * @param {string} choice @param {string} [custom] the typed code for OTHER ("28992" or "EPSG:28992")
 * @returns {string|null}
 * @throws {Error} for an OTHER code that is not EPSG:N
 */
export function crsValue(choice, custom = '') {
  if (choice === LOCAL || choice === FROM_FILE) return null;
  if (choice !== OTHER) return choice;
  const text = custom.trim();
  const match = text.match(/^(?:EPSG:)?(\d{4,6})$/i);
  if (!match) throw new Error('Type the other CRS as EPSG:N, for example EPSG:3035.');
  return `EPSG:${match[1]}`;
}

/**
 * The `origin` form value "lon,lat,h" from what was typed ("4.761, 52.3095, 39.6" or with
 * spaces only).
 * @param {string} text
 * @returns {string}
 * @throws {Error} when it is not three numbers with a latitude in -90..90 and a longitude in -180..180
 */
export function originValue(text) {
  const parts = text.trim().split(/[\s,;]+/).filter(Boolean).map(Number);
  if (parts.length !== 3 || !parts.every(Number.isFinite)) {
    throw new Error('Give the origin as longitude, latitude, height, for example 4.7610, 52.3095, 39.6.');
  }
  const [lon, lat] = parts;
  if (lat < -90 || lat > 90 || lon < -180 || lon > 180) {
    throw new Error('The origin is longitude first, then latitude (degrees), then height (metres).');
  }
  return parts.join(',');
}
