// The one HTTP client of the viewer: every call carries the token as a bearer header (never in a
// query string), and every failure becomes an ApiError with the server's message in plain words.

/** An HTTP call that did not succeed: `status` is the HTTP status (0 when the server was not reached). */
export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** The server's `detail` (a string, or FastAPI's list of validation errors) as one sentence. */
function describe(status, body) {
  const detail = body && body.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => `${(d.loc || []).filter((p) => p !== 'body').join('.')}: ${d.msg}`)
      .join('; ');
  }
  if (status === 401) return 'The token is missing, invalid, expired or revoked.';
  if (status === 403) return 'This token may not do that.';
  if (status === 404) return 'Not found (or not visible with this token).';
  if (status === 413) return 'That is too large for the server.';
  if (status === 429) return 'Too many requests; wait a moment and try again.';
  if (status >= 500) return 'The server could not do that right now; try again later.';
  return `The server answered ${status}.`;
}

export class Api {
  /** @param {string} token the bearer token ('' for anonymous calls) */
  constructor(token) {
    this.token = token;
    /** @type {null | {id: string, name: string, role: string, scopes: string[], actions: string[]}} */
    this.identity = null;
  }

  /** Headers for fetch (also used by the tiles renderer). */
  headers(extra = {}) {
    return this.token ? { Authorization: `Bearer ${this.token}`, ...extra } : { ...extra };
  }

  /** @param {string} method @param {string} path @param {any} [body] */
  async request(method, path, body) {
    const init = { method, headers: this.headers() };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, 'The server cannot be reached; check the connection.');
    }
    const type = response.headers.get('content-type') || '';
    const data = type.includes('json') ? await response.json().catch(() => null) : null;
    if (!response.ok) throw new ApiError(response.status, describe(response.status, data));
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body = {}) { return this.request('POST', path, body); }
  patch(path, body) { return this.request('PATCH', path, body); }
  del(path) { return this.request('DELETE', path); }

  /**
   * A multipart upload with progress (XMLHttpRequest: fetch reports no upload progress).
   * @param {string} path @param {FormData} form @param {(fraction: number) => void} [onProgress]
   */
  upload(path, form, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', path);
      for (const [k, v] of Object.entries(this.headers())) xhr.setRequestHeader(k, v);
      xhr.responseType = 'json';
      xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
      xhr.onerror = () => reject(new ApiError(0, 'The upload was interrupted; check the connection.'));
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
        else reject(new ApiError(xhr.status, describe(xhr.status, xhr.response)));
      };
      xhr.send(form);
    });
  }

  /** Who this token is (GET /api/v1/tokens/current); null for no token. */
  async whoami() {
    if (!this.token) return null;
    this.identity = await this.get('/api/v1/tokens/current');
    return this.identity;
  }

  /** @param {string} action a policy action such as 'acknowledge_alerts' */
  can(action) {
    return Boolean(this.identity && this.identity.actions.includes(action));
  }
}

/**
 * The token from the address fragment (`#access_token=...`), else from this tab's sessionStorage;
 * removes it from the address bar so that it is not bookmarked or shared by accident.
 */
export function tokenFromPage() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const given = fragment.get('access_token');
  if (given) {
    sessionStorage.setItem('arserver-token', given);
    fragment.delete('access_token');
    const rest = fragment.toString();
    history.replaceState(null, '', window.location.pathname + window.location.search + (rest ? `#${rest}` : ''));
    return given;
  }
  return sessionStorage.getItem('arserver-token') || '';
}
