// The REST client: the public control and history API, nothing else.

import { signIn } from "./auth.js";

// Same origin by default (the hosted dashboard shares its origin with the API); config.js
// may name another apiBase, and a deployment's sign-in (auth.js).
const CONFIG = globalThis.DISPATCH_REPLAY ?? {};
const BASE = `${(CONFIG.apiBase ?? "").replace(/\/$/, "")}/api/replay`;

/** A non-2xx answer; `problem` is the problem+json body when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem ?? null;
  }
}

function commandId() {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `ui-${random[0].toString(36)}${random[1].toString(36)}`;
}

export class Api {
  /**
   * @param {string|null} user local identity sent as X-Replay-User (local mode only; the
   *   deployed API takes the caller from its JWT authorizer and ignores the header)
   */
  constructor(user) {
    this.user = user;
  }

  /** A bookmark's incident report (an HTML file), as a Blob. */
  async report(sessionId, bookmarkId) {
    const path = `/sessions/${encodeURIComponent(sessionId)}/bookmarks/${encodeURIComponent(bookmarkId)}/report`;
    return this.request("GET", path, undefined, false, "blob");
  }

  async request(method, path, body, renewed = false, as = "json") {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.user) headers["X-Replay-User"] = this.user;
    const authorization = await signIn.authorization();
    if (authorization) headers.Authorization = authorization;
    const response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    if (response.status === 401 && signIn.enabled && !renewed) {
      // The sign-in lapsed (a token the authorizer no longer takes): renew it, once.
      await signIn.renew();
      return this.request(method, path, body, true, as);
    }
    if (!response.ok) {
      let problem = null;
      try {
        problem = await response.json();
      } catch {
        problem = null;
      }
      throw new ApiError(response.status, problem);
    }
    if (response.status === 204) return null;
    return as === "blob" ? response.blob() : response.json();
  }

  /** Airports and their published service days. */
  airports() {
    return this.request("GET", "/airports");
  }

  /** A day's manifest: catalogue, layout, histogram. */
  manifest(airport, date) {
    const path = `/airports/${encodeURIComponent(airport)}/days/${encodeURIComponent(date)}/manifest`;
    return this.request("GET", path);
  }

  /** A day's navigable events (late blocks, conflicts, reassignments, overdue tasks). */
  events(airport, date) {
    return this.request("GET", `/airports/${encodeURIComponent(airport)}/days/${encodeURIComponent(date)}/events`);
  }

  /** KPIs of [start, end) (epoch ms); filters: {stand: [], task_type: [], vehicle_type: []}. */
  kpis(airport, start, end, filters) {
    const query = new URLSearchParams({ start: String(start), end: String(end) });
    for (const [name, values] of Object.entries(filters)) for (const value of values) query.append(name, value);
    return this.request("GET", `/airports/${encodeURIComponent(airport)}/kpis?${query}`);
  }

  createSession(body) {
    return this.request("POST", "/sessions", body);
  }

  getSession(sessionId) {
    return this.request("GET", `/sessions/${encodeURIComponent(sessionId)}`);
  }

  /**
   * One control action. Without expected_version the server re-applies on a concurrent
   * write (last writer wins, nothing lost); the command id makes a retry after a network
   * failure harmless.
   */
  async control(sessionId, command) {
    const body = { command_id: commandId(), ...command };
    const path = `/sessions/${encodeURIComponent(sessionId)}/control`;
    try {
      return await this.request("POST", path, body);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      return this.request("POST", path, body); // network blip: retry once, same command id
    }
  }

  /** The session with a fresh stream token. */
  streamToken(sessionId) {
    return this.request("POST", `/sessions/${encodeURIComponent(sessionId)}/stream-token`, {});
  }

  /** Viewer heartbeat: streams run only while someone renews presence. */
  presence(sessionId) {
    return this.request("POST", `/sessions/${encodeURIComponent(sessionId)}/presence`, {});
  }

  share(sessionId) {
    return this.request("POST", `/sessions/${encodeURIComponent(sessionId)}/shares`, {});
  }

  /** The session's bookmarks and notes: {revision, limit, bookmarks}. */
  bookmarks(sessionId) {
    return this.request("GET", `/sessions/${encodeURIComponent(sessionId)}/bookmarks`);
  }

  addBookmark(sessionId, body) {
    return this.request("POST", `/sessions/${encodeURIComponent(sessionId)}/bookmarks`, body);
  }

  deleteBookmark(sessionId, bookmarkId) {
    const path = `/sessions/${encodeURIComponent(sessionId)}/bookmarks/${encodeURIComponent(bookmarkId)}`;
    return this.request("DELETE", path);
  }

  join(shareToken) {
    return this.request("POST", "/sessions/join", { share_token: shareToken });
  }
}
