// The session's SSE stream: one EventSource at a time, resumed without loss or duplicates.
//
// Two ways a stream comes back:
// - the browser's own retry, after a cleanly ended or dropped 200 response: it reconnects
//   to the same URL and sends Last-Event-ID itself;
// - a new EventSource, made here, whenever the old one is CLOSED for good (any non-200
//   answer, e.g. an expired stream token) or the server asked for a reconnect (lifetime
//   limit, idle): a fresh token first, and the last event id as `resume_from` because an
//   EventSource cannot set headers. The server then sends exactly what was missed.
// Frame events are also deduplicated here by (event, id), in case a resume overlaps.

const FRAME_EVENTS = [
  "task_update",
  "flight_update",
  "notification",
  "dispatch_decision",
  "stand_update",
  "vehicle_task_update",
  "aircraft_update",
  "vehicle_update",
];
const MAX_REMEMBERED_IDS = 4096;
const MAX_BACKOFF_MS = 15000;

export class ReplayStream {
  /**
   * @param {object} options
   * @param {import("./api.js").Api} options.api
   * @param {string} options.sessionId
   * @param {string} options.url the stream URL (with a stream token) from the session view
   * @param {(name: string, data: any, id: string) => void} options.onEvent
   * @param {(transport: string) => void} options.onTransport
   * @param {(view: any) => void} [options.onView] a fresher session view (token renewals)
   * @param {(error: any) => void} [options.onFatal]
   * @param {string} [options.variant] which of the session's variants to play (compare
   *   mode's second stream); the session's own when absent
   */
  constructor({ api, sessionId, url, onEvent, onTransport, onView, onFatal, variant }) {
    this.api = api;
    this.sessionId = sessionId;
    this.url = url;
    this.variant = variant ?? null;
    this.onEvent = onEvent;
    this.onTransport = onTransport;
    this.onView = onView ?? (() => {});
    this.onFatal = onFatal ?? (() => {});
    this.source = null;
    this.transport = "connecting";
    this.lastEventId = "";
    this.failures = 0;
    this.timer = null;
    this.stopped = false;
    this.seen = new Map(); // "event id" of frame events since the last snapshot
    this.stats = { events: 0, duplicates: 0, reconnects: 0, opened: 0 };
    this.everOpened = false;
  }

  start() {
    this.connect();
  }

  setTransport(transport) {
    if (this.transport === transport) return;
    this.transport = transport;
    this.onTransport(transport);
  }

  connect() {
    if (this.stopped) return;
    const url = new URL(this.url, location.href);
    if (this.lastEventId) url.searchParams.set("resume_from", this.lastEventId);
    if (this.variant) url.searchParams.set("variant", this.variant);
    const source = new EventSource(url.toString());
    this.source = source;
    source.onopen = () => {
      if (source !== this.source) return;
      this.failures = 0;
      this.stats.opened += 1;
      if (this.everOpened) this.stats.reconnects += 1;
      this.everOpened = true;
      this.setTransport("live");
    };
    for (const name of ["snapshot", "playback", "end", ...FRAME_EVENTS]) {
      source.addEventListener(name, (event) => this.receive(source, name, event));
    }
    source.addEventListener("reconnect", (event) => {
      if (source !== this.source) return;
      this.remember(event);
      // The server ends this response right after (lifetime limit, idle): come back at once
      // with a fresh token rather than after the retry delay with a possibly stale one.
      this.reopen(150 + Math.random() * 350);
    });
    source.addEventListener("error", (event) => {
      if (source !== this.source) return;
      if (event instanceof MessageEvent && event.data) {
        this.serverError(event);
      } else if (source.readyState === EventSource.CLOSED) {
        this.reopen(this.backoff()); // a non-200 answer: the browser gave up on this one
      } else {
        this.setTransport("reconnecting"); // the browser retries by itself
      }
    });
  }

  remember(event) {
    if (event.lastEventId) this.lastEventId = event.lastEventId;
  }

  receive(source, name, event) {
    if (source !== this.source) return;
    this.stats.events += 1;
    const id = event.lastEventId;
    if (name === "snapshot") {
      this.seen.clear(); // a snapshot replaces the state; ids after it start afresh
    } else if (FRAME_EVENTS.includes(name) && id) {
      const key = `${name} ${id}`;
      if (this.seen.has(key)) {
        this.stats.duplicates += 1;
        this.remember(event);
        return;
      }
      this.seen.set(key, true);
      if (this.seen.size > MAX_REMEMBERED_IDS) this.seen.delete(this.seen.keys().next().value);
    }
    this.remember(event);
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return; // never happens with this server; a bad event must not stop the stream
    }
    this.onEvent(name, data, id);
  }

  serverError(event) {
    this.remember(event);
    let data = {};
    try {
      data = JSON.parse(event.data);
    } catch {
      data = {};
    }
    // Final: the session is gone, or its owner removed this viewer (a retry would only
    // meet a 404 and look like an outage meanwhile).
    if (data.code === "session_gone" || data.code === "access_revoked") {
      this.fail(data);
      return;
    }
    this.reopen(data.retry_ms ?? this.backoff());
  }

  backoff() {
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.failures);
    this.failures += 1;
    return base * (0.75 + Math.random() * 0.5);
  }

  closeSource() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  /** Close the current EventSource and open a new one (fresh token, resume point). */
  reopen(delayMs) {
    if (this.stopped) return;
    this.closeSource();
    this.setTransport("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.renewAndConnect(), delayMs);
  }

  async renewAndConnect() {
    if (this.stopped) return;
    if (!navigator.onLine) {
      window.addEventListener("online", () => this.reopen(0), { once: true });
      return;
    }
    try {
      const view = await this.api.streamToken(this.sessionId);
      if (this.stopped) return;
      this.url = view.stream.url;
      this.onView(view);
    } catch (error) {
      if (error?.status === 404 || error?.status === 403 || error?.status === 401) {
        this.fail(error);
      } else {
        this.reopen(this.backoff());
      }
      return;
    }
    this.connect();
  }

  fail(error) {
    this.stop();
    this.setTransport("error");
    this.onFatal(error);
  }

  /** Test hook: drop the connection as a network failure would. */
  drop() {
    this.reopen(this.backoff());
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.closeSource();
  }
}
