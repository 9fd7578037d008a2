// The live overlay's client (docs/live-protocol.md): `LiveClient` is the protocol as a state
// machine without I/O (messages and closes in, effects out), `LiveSocket` the thin WebSocket
// shell around it (connect, resume, back-off, heartbeat).

/** Back-off before reconnecting: 0.5 s, doubling, at most 10 s; reset by a welcome. */
export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 10_000;
/** A connection up this long counts as stable: the back-off starts over after it drops. */
export const STABLE_MS = 10_000;
/** At most this many arrival counts are kept (oldest forgotten first). */
export const RECEIVED_LIMIT = 10_000;

/** What a token that can no longer follow the overlay is told. */
export const TOKEN_GONE_MESSAGE =
  'The live overlay stopped: this access token was revoked or has expired. Ask for a new link or token and open the page again.';

/**
 * @typedef {{key: string, layer: string, kind: string|null, time: string,
 *   position: number[], data: Record<string, any>, removed?: boolean}} LiveItem
 * @typedef {{id: string, area: object, layers?: string[], kinds?: string[]|null,
 *   frame?: object, max_rate_hz?: number|null, proximity_m?: number|null}} Subscription
 * @typedef {{type: 'send', message: object}
 *   | {type: 'items', id: string, reason: string, upserts: LiveItem[], removes: string[]}
 *   | {type: 'enter', id: string, key: string, item: LiveItem|null, distance: number|null}
 *   | {type: 'leave', id: string, key: string}
 *   | {type: 'error', id: string|null, code: string, message: string}
 *   | {type: 'reconnect', delayMs: number}
 *   | {type: 'stop', code: number, message: string}
 *   | {type: 'status'}} Effect
 */

/**
 * The protocol's state: the session and the last processed `seq` (what a resume starts
 * from), the subscriptions, and the items each subscription holds. Every input returns the
 * effects to carry out; nothing here touches the network or the clock.
 *
 * Guarantees: a message with a `seq` at or below the last processed one is ignored (never
 * applied twice); a snapshot replaces everything of its subscription; an item never replaces
 * a newer one of the same key (by `time`); `received` counts each arrival of an item of a
 * snapshot or update once, by `${layer}:${key}:${time}`.
 */
export class LiveClient {
  /**
   * @param {{subscriptions?: Subscription[], received?: Record<string, number>}} [options]
   *   `received`: the object to count arrivals in (default a new one)
   */
  constructor({ subscriptions = [], received = {} } = {}) {
    /** @type {Map<string, Subscription>} */
    this.subscriptions = new Map(subscriptions.map((s) => [s.id, s]));
    /** @type {Map<string, Map<string, LiveItem>>} items by subscription, then key */
    this.items = new Map();
    this.state = {
      connected: false, session: null, lastSeq: 0, reconnects: 0, recovered: null,
      stopped: false, message: null,
    };
    /** @type {Record<string, number>} */
    this.received = received;
    this.receivedOrder = Object.keys(received);
    this.attempt = 0; // failed connections since the last welcome
    this.welcomed = false; // on the current connection
    this.refusals = 0; // consecutive 4001 closes
  }

  /**
   * The WebSocket URL: `base` (ws:// or wss:// origin + path) with the token and, when there
   * is a session to resume, `session` and `last_seq`.
   * @param {string} base @param {string} token
   */
  url(base, token) {
    const query = new URLSearchParams({ access_token: token });
    if (this.state.session) {
      query.set('session', this.state.session);
      query.set('last_seq', String(this.state.lastSeq));
    }
    return `${base}?${query}`;
  }

  /** A new connection opened (the welcome is still to come). @returns {Effect[]} */
  opened() {
    this.welcomed = false;
    return [];
  }

  /**
   * Add or replace a subscription (same id replaces, as on the server).
   * @param {Subscription} subscription @returns {Effect[]}
   */
  subscribe(subscription) {
    this.subscriptions.set(subscription.id, subscription);
    return this.welcomed ? [send(subscribeMessage(subscription))] : [];
  }

  /** @param {string} id @returns {Effect[]} */
  unsubscribe(id) {
    if (!this.subscriptions.delete(id)) return [];
    const effects = this.dropItems(id, 'unsubscribe');
    if (this.welcomed) effects.unshift(send({ type: 'unsubscribe', id }));
    return effects;
  }

  /**
   * One parsed server message.
   * @param {any} message @returns {Effect[]}
   */
  receive(message) {
    if (!message || typeof message !== 'object') return [];
    if (message.type === 'welcome') return this.welcome(message);
    if (typeof message.seq === 'number') {
      if (message.seq <= this.state.lastSeq) return []; // already processed
      const gap = message.seq > this.state.lastSeq + 1;
      this.state.lastSeq = message.seq;
      const effects = this.sequenced(message);
      if (gap) {
        // Never expected (seqs have no holes); a fresh snapshot of everything mends it.
        for (const sub of this.subscriptions.values()) effects.push(send(subscribeMessage(sub)));
      }
      effects.push({ type: 'status' });
      return effects;
    }
    if (message.type === 'error') {
      return [{ type: 'error', id: message.id ?? null, code: message.code, message: message.message }];
    }
    return []; // pong and anything unknown
  }

  /** @returns {Effect[]} */
  welcome(message) {
    const resumed = this.state.session !== null;
    const sameSession = resumed && message.session === this.state.session;
    this.welcomed = true;
    this.welcomedAt = Date.now();
    this.refusals = 0;
    this.state.connected = true;
    this.state.message = null;
    this.state.recovered = resumed ? Boolean(message.recovered) && sameSession : null;
    const effects = [];
    if (sameSession && message.recovered) {
      // The server sends exactly what came after our last_seq: carry on.
    } else if (sameSession) {
      // Not recovered: each subscription gets a fresh snapshot with a seq after last_seq.
      this.state.lastSeq = Math.min(this.state.lastSeq, Number(message.last_seq) || 0);
    } else {
      // A new session: subscriptions are gone on the server; subscribe again.
      this.state.session = message.session;
      this.state.lastSeq = Number(message.last_seq) || 0;
      for (const sub of this.subscriptions.values()) effects.push(send(subscribeMessage(sub)));
    }
    effects.push({ type: 'status' });
    return effects;
  }

  /** @returns {Effect[]} */
  sequenced(message) {
    const id = message.id;
    switch (message.type) {
      case 'snapshot':
        return this.snapshot(id, message.items || [], message.reason || 'subscribe');
      case 'update':
        return this.update(id, message.items || []);
      case 'enter':
        if (message.item) this.count([message.item], false);
        return [{ type: 'enter', id, key: message.key, item: message.item ?? null,
                  distance: message.distance_m ?? null }]; // prettier-ignore
      case 'leave':
        return [{ type: 'leave', id, key: message.key }];
      case 'unsubscribed':
        return this.dropItems(id, 'unsubscribe');
      default:
        return [];
    }
  }

  /** @returns {Effect[]} */
  snapshot(id, items, reason) {
    this.count(items, true);
    const before = this.items.get(id) || new Map();
    const after = new Map();
    for (const item of items) if (!item.removed) after.set(item.key, item);
    this.items.set(id, after);
    const removes = [...before.keys()].filter((key) => !after.has(key));
    return [{ type: 'items', id, reason, upserts: [...after.values()], removes }];
  }

  /** @returns {Effect[]} */
  update(id, items) {
    this.count(items, true);
    let held = this.items.get(id);
    if (!held) this.items.set(id, (held = new Map()));
    const upserts = [];
    const removes = [];
    for (const item of items) {
      const old = held.get(item.key);
      if (old && typeof old.time === 'string' && typeof item.time === 'string' && item.time < old.time) {
        continue; // never go back to an older state of the same thing
      }
      if (item.removed) {
        if (held.delete(item.key)) removes.push(item.key);
      } else {
        held.set(item.key, item);
        upserts.push(item);
      }
    }
    return upserts.length || removes.length ? [{ type: 'items', id, reason: 'update', upserts, removes }] : [];
  }

  /** @returns {Effect[]} */
  dropItems(id, reason) {
    const held = this.items.get(id);
    this.items.delete(id);
    if (!held || held.size === 0) return [];
    return [{ type: 'items', id, reason, upserts: [], removes: [...held.keys()] }];
  }

  count(items, counted) {
    if (!counted) return;
    for (const item of items) {
      if (!item || !item.time) continue;
      const key = `${item.layer}:${item.key}:${item.time}`;
      if (!(key in this.received)) {
        this.receivedOrder.push(key);
        if (this.receivedOrder.length > RECEIVED_LIMIT) delete this.received[this.receivedOrder.shift()];
      }
      this.received[key] = (this.received[key] || 0) + 1;
    }
  }

  /**
   * The connection closed (or failed to open).
   * @param {number} code the close code (1006 when the handshake failed)
   * @returns {Effect[]}
   */
  closed(code) {
    const wasWelcomed = this.welcomed;
    this.welcomed = false;
    this.state.connected = false;
    if (this.state.stopped) return [{ type: 'status' }];
    if (code === 4003 || (code === 4001 && ++this.refusals >= 2)) {
      return this.stop(code, TOKEN_GONE_MESSAGE);
    }
    if (code === 4009) {
      return this.stop(code, 'The live overlay continues in another connection of this session.');
    }
    if (code !== 4001) this.refusals = 0;
    if (wasWelcomed) this.state.reconnects += 1;
    // The back-off starts over only after a connection that stayed up (a server that welcomes
    // and drops at once is not hammered), and is jittered so that clients dropped together do
    // not come back together; the first retry stays quick for a single network drop.
    if (wasWelcomed && Date.now() - (this.welcomedAt || 0) >= STABLE_MS) this.attempt = 0;
    const ceiling = Math.min(BACKOFF_FIRST_MS * 2 ** this.attempt, BACKOFF_MAX_MS);
    const delayMs = this.attempt === 0 ? BACKOFF_FIRST_MS : ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    return [{ type: 'reconnect', delayMs }, { type: 'status' }];
  }

  /** Stop for good (no reconnect). @returns {Effect[]} */
  stop(code, message) {
    this.state.stopped = true;
    this.state.connected = false;
    this.state.message = message;
    return [{ type: 'stop', code, message }, { type: 'status' }];
  }
}

function send(message) {
  return { type: 'send', message };
}

/** @param {Subscription} sub */
function subscribeMessage(sub) {
  const message = { type: 'subscribe', ...sub };
  for (const [k, v] of Object.entries(message)) if (v === undefined) delete message[k];
  return message;
}

/**
 * The WebSocket around a LiveClient: connects (the token only in this URL), parses messages,
 * carries out the client's effects, reconnects with back-off, and watches the connection with
 * an application-level ping (a connection that answers nothing for `deadMs` is dropped and
 * resumed). `onEffects` receives every effect that is not about the socket itself.
 */
export class LiveSocket {
  /**
   * @param {LiveClient} client
   * @param {{base: string, token: string, onEffects: (effects: Effect[]) => void,
   *   WebSocketImpl?: typeof WebSocket, pingMs?: number, deadMs?: number,
   *   onHandshakeFailed?: () => Promise<boolean>}} options
   *   `onHandshakeFailed` is asked after a connection closed before its welcome; resolving
   *   false (the token is no longer valid) stops the client.
   */
  constructor(client, options) {
    this.client = client;
    this.options = { pingMs: 20_000, deadMs: 15_000, WebSocketImpl: globalThis.WebSocket, ...options };
    this.ws = null;
    this.timer = null;
    this.heartbeat = null;
    this.lastHeard = 0;
    this.closedForGood = false;
    this.onOnline = () => {
      if (this.timer !== null && !this.ws) {
        clearTimeout(this.timer);
        this.timer = null;
        this.connect();
      }
    };
    globalThis.addEventListener?.('online', this.onOnline);
  }

  /** Open the first connection. */
  start() {
    this.connect();
  }

  connect() {
    this.timer = null;
    if (this.closedForGood || this.client.state.stopped) return;
    const { WebSocketImpl, base, token } = this.options;
    let ws;
    try {
      ws = new WebSocketImpl(this.client.url(base, token));
    } catch (error) {
      this.handleClose(null, 1006);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      this.dispatch(this.client.opened());
      this.startHeartbeat(ws);
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return; // a socket we already left behind
      this.lastHeard = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatch(this.client.receive(message));
    };
    ws.onclose = (event) => this.handleClose(ws, event.code);
    ws.onerror = () => {}; // a close event follows
  }

  handleClose(ws, code) {
    if (ws !== null && this.ws !== ws) return; // dropped on purpose: already handled
    const welcomed = this.client.welcomed;
    this.ws = null;
    this.stopHeartbeat();
    const effects = this.client.closed(code);
    this.dispatch(effects);
    if (!welcomed && !this.client.state.stopped && this.options.onHandshakeFailed) {
      this.options.onHandshakeFailed().then((valid) => {
        if (!valid && !this.client.state.stopped) {
          if (this.timer !== null) clearTimeout(this.timer);
          this.timer = null;
          this.dispatch(this.client.stop(4003, TOKEN_GONE_MESSAGE));
        }
      }, () => {});
    }
  }

  /** @param {Effect[]} effects */
  dispatch(effects) {
    const rest = [];
    for (const effect of effects) {
      if (effect.type === 'send') {
        if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(effect.message));
      } else if (effect.type === 'reconnect') {
        const delayMs = Math.max(effect.delayMs, (this.holdUntil || 0) - Date.now());
        if (!this.closedForGood) this.timer = setTimeout(() => this.connect(), delayMs);
      } else {
        rest.push(effect);
      }
    }
    if (rest.length) this.options.onEffects(rest);
  }

  startHeartbeat(ws) {
    this.stopHeartbeat();
    const { pingMs, deadMs } = this.options;
    this.heartbeat = setInterval(() => {
      if (this.ws !== ws) return;
      if (Date.now() - this.lastHeard > pingMs + deadMs) {
        this.dropConnection(); // silent for too long: resume on a new connection
        return;
      }
      if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'ping', data: Date.now() }));
    }, Math.min(pingMs, deadMs));
  }

  stopHeartbeat() {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Send through the client (subscribe, move...). @param {Effect[]} effects */
  send(effects) {
    this.dispatch(effects);
  }

  /**
   * Close the socket the way a network drop would (test hook): the client reconnects after
   * its back-off and resumes from the last processed seq.
   */
  /**
   * Close the socket as a network drop would, and resume; the test hook also keeps the
   * connection down for at least `holdMs` (so that what happens meanwhile must come through
   * the resume).
   */
  dropConnection(holdMs = 0) {
    this.holdUntil = Date.now() + holdMs;
    const ws = this.ws;
    if (!ws) return;
    this.ws = null; // its own close event is ignored from here on
    try {
      ws.close();
    } catch {
      /* already closing */
    }
    this.handleClose(null, 1006);
  }

  /** Close for good (no reconnect). */
  close() {
    this.closedForGood = true;
    globalThis.removeEventListener?.('online', this.onOnline);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    }
  }
}
