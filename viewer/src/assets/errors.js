// Upload and conversion errors in plain words: the server's own text, preceded by what to do
// for the common ones (a file type that is not read, a CRS that is unknown or missing, a file
// that is too large, an origin that is wrong).

/**
 * @typedef {{title: string, advice: string, detail: string}} PlainError
 * `title` one short sentence, `advice` what to do ('' when nothing obvious), `detail` the
 * server's text as it came
 */

const RULES = [
  {
    test: (t, s) => s === 413 || /larger than the limit|too large/i.test(t),
    title: 'The file is too large for this server.',
    advice: 'Split it into smaller files, or ask the administrator to raise ARSERVER_MAX_UPLOAD_MIB.',
  },
  {
    test: (t) => /ZIP archive|gzip-compressed/i.test(t),
    title: 'Compressed archives are not unpacked.',
    advice: 'Unpack the ZIP or gzip file and upload what is inside.',
  },
  {
    test: (t) => /unsupported input format|cannot tell the format|not a supported input|is not read here/i.test(t),
    title: 'This type of file is not supported.',
    advice: 'Upload GeoJSON, CityJSON, glTF/GLB, OBJ, PLY, STL, LAS/LAZ or XYZ.',
  },
  {
    test: (t) => /unknown CRS/i.test(t),
    title: 'The CRS is unknown.',
    advice: 'Choose one from the list, or type a valid EPSG code (EPSG:N).',
  },
  {
    test: (t) => /no CRS in the file/i.test(t),
    title: 'The file does not say where it is.',
    advice:
      'Choose its CRS (RD New + NAP, EPSG:7415, for most Dutch data), or "Local model in metres" with an origin.',
  },
  {
    test: (t) => /origin must be/i.test(t),
    title: 'The origin is not valid.',
    advice: 'Give longitude, latitude (degrees) and ellipsoidal height (metres), separated by commas.',
  },
  {
    test: (t) => /outside the grid|OutsideGrid|outside .*extent/i.test(t),
    title: 'The data lies outside the area this server can place.',
    advice: 'Check the CRS: RD New coordinates given as WGS 84 (or the other way round) end up far away.',
  },
  {
    test: (t) => /texture|pixels|more points than/i.test(t),
    title: 'The file is larger inside than this server decodes.',
    advice: 'Reduce the texture size or split the point cloud.',
  },
  {
    test: (t) => /time limit|timed out|memory/i.test(t),
    title: 'The conversion ran out of time or memory.',
    advice: 'Split the file, or ask the administrator to raise the job limits.',
  },
  {
    test: (t, s) => s === 401,
    title: 'The token is not valid (any more).',
    advice: 'Open the page again with a current token.',
  },
  {
    test: (t, s) => s === 403,
    title: 'This token may not upload or change assets.',
    advice: 'Use a token of role gis or admin.',
  },
  {
    test: (t, s) => s === 0,
    title: 'The server cannot be reached.',
    advice: 'Check the connection and try again.',
  },
];

/**
 * A failed upload or conversion in plain words.
 * @param {string} text the server's error (`error` of the asset, or ApiError.message)
 * @param {number} [status] the HTTP status of a refused upload (none for a failed conversion)
 * @returns {PlainError}
 */
export function plainError(text, status) {
  const detail = String(text || '').trim();
  for (const rule of RULES) {
    if (rule.test(detail, status)) return { title: rule.title, advice: rule.advice, detail };
  }
  return { title: status ? 'The server refused the upload.' : 'The conversion failed.', advice: '', detail };
}
