// Sign-in of a deployed dashboard: OpenID Connect authorization code flow with PKCE.
//
// config.js (written by `make deploy` from the stack's outputs) names the issuer the HTTP
// API's JWT authorizer trusts and the dashboard's client id there:
//   window.DISPATCH_REPLAY = { apiBase: "", auth: { issuer, clientId, scopes } }
// Without `auth` (the local demo, AUTH_MODE=local) nobody signs in.
//
// Tokens live in memory only; the one thing kept across the redirect to the issuer and
// back is the PKCE verifier, the state and the page's address (sessionStorage, this tab).
// The token is renewed with the refresh token a minute before it expires, and at once when
// the API answers 401; a refresh the issuer refuses sends the user through sign-in again,
// back to the same address (the session id is in it).

const CONFIG = globalThis.DISPATCH_REPLAY ?? {};
const PENDING_KEY = "dispatch-replay.sign-in";
const RENEW_BEFORE_S = 60;

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(byteCount) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The claims of a JWT, unverified: only to read its expiry and audience here (the API
 *  verifies it). */
function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload + "=".repeat((4 - (payload.length % 4)) % 4)));
  } catch {
    return {};
  }
}

export class SignInError extends Error {
  constructor(message) {
    super(message);
    this.name = "SignInError";
  }
}

/** The issuer's redirect back to this page, taken off the address at once (before any
 *  other module reads it: the page's own parameters come back from returnTo). */
function takeCallback() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null");
  if (!pending || params.get("state") !== pending.state) return null;
  if (!params.has("code") && !params.has("error")) return null;
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(null, "", pending.returnTo);
  if (params.has("error")) return { error: params.get("error_description") || params.get("error") };
  return { code: params.get("code"), verifier: pending.verifier, redirectUri: pending.redirectUri };
}

class SignIn {
  constructor(config) {
    this.config = config;
    this.callback = config ? takeCallback() : null;
    this.tokens = null; // {bearer, refresh, expiresAt (epoch s), idToken}
    this.discovery = null;
    this.renewTimer = null;
    this.signingIn = null;
    this.listeners = new Set();
  }

  get enabled() {
    return this.config !== null;
  }

  async metadata() {
    if (!this.discovery) {
      const issuer = this.config.issuer.replace(/\/$/, "");
      const response = await fetch(`${issuer}/.well-known/openid-configuration`, { cache: "no-store" });
      if (!response.ok) throw new SignInError(`the sign-in service answered ${response.status}`);
      this.discovery = await response.json();
    }
    return this.discovery;
  }

  /** The Authorization header value for an API call (null: no sign-in configured). */
  async authorization() {
    if (!this.enabled) {
      const token = typeof CONFIG.authToken === "function" ? CONFIG.authToken() : CONFIG.authToken;
      return token ? `Bearer ${token}` : null;
    }
    if (!this.tokens) await this.signIn();
    if (this.tokens.expiresAt - Date.now() / 1000 < RENEW_BEFORE_S) await this.renew();
    return `Bearer ${this.tokens.bearer}`;
  }

  /** Who is signed in (the id token's claims), or null. */
  user() {
    return this.tokens ? claimsOf(this.tokens.idToken ?? this.tokens.bearer) : null;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  /** Finish a sign-in the issuer redirected back from, or start one (the page leaves). */
  signIn() {
    if (!this.signingIn) {
      this.signingIn = this.completeOrStart().finally(() => {
        this.signingIn = null;
      });
    }
    return this.signingIn;
  }

  async completeOrStart() {
    const callback = this.callback;
    this.callback = null;
    if (callback?.error) throw new SignInError(callback.error);
    if (callback) {
      await this.exchange({
        grant_type: "authorization_code",
        code: callback.code,
        redirect_uri: callback.redirectUri,
        code_verifier: callback.verifier,
      });
      return;
    }
    await this.redirect();
  }

  async redirect() {
    const metadata = await this.metadata();
    const verifier = randomString(48);
    const state = randomString(16);
    const redirectUri = `${location.origin}/`;
    sessionStorage.setItem(
      PENDING_KEY,
      JSON.stringify({ verifier, state, redirectUri, returnTo: location.pathname + location.search + location.hash }),
    );
    const query = new URLSearchParams({
      response_type: "code",
      client_id: this.config.clientId,
      redirect_uri: redirectUri,
      scope: this.config.scopes || "openid",
      state,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
    });
    location.assign(`${metadata.authorization_endpoint}?${query}`);
    return new Promise(() => {}); // the page is leaving
  }

  async exchange(form) {
    const metadata = await this.metadata();
    const response = await fetch(metadata.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: this.config.clientId, ...form }),
      cache: "no-store",
    });
    if (!response.ok) throw new SignInError(`the sign-in service refused the token request (${response.status})`);
    const answer = await response.json();
    // The token the authorizer checks against the client id: an access token that names
    // it (aud or client_id, as Cognito's do), else the id token (whose aud it is).
    const access = answer.access_token ? claimsOf(answer.access_token) : {};
    const accessNamesClient =
      access.client_id === this.config.clientId ||
      access.aud === this.config.clientId ||
      (Array.isArray(access.aud) && access.aud.includes(this.config.clientId));
    const bearer = accessNamesClient ? answer.access_token : answer.id_token ?? answer.access_token;
    const claims = claimsOf(bearer);
    const expiresAt = claims.exp ?? Date.now() / 1000 + Number(answer.expires_in ?? 300);
    this.tokens = {
      bearer,
      idToken: answer.id_token ?? this.tokens?.idToken ?? null,
      refresh: answer.refresh_token ?? this.tokens?.refresh ?? null,
      expiresAt,
    };
    this.scheduleRenewal();
    for (const listener of this.listeners) listener(this.user());
  }

  scheduleRenewal() {
    clearTimeout(this.renewTimer);
    const inMs = (this.tokens.expiresAt - RENEW_BEFORE_S) * 1000 - Date.now();
    this.renewTimer = setTimeout(() => this.renew().catch(() => {}), Math.max(inMs, 1000));
  }

  /** A fresh token with the refresh token; without one, or refused, sign in again. */
  async renew() {
    if (!this.enabled) return;
    if (this.tokens?.refresh) {
      try {
        await this.exchange({ grant_type: "refresh_token", refresh_token: this.tokens.refresh });
        return;
      } catch {
        this.tokens = null;
      }
    }
    this.tokens = null;
    await this.signIn();
  }

  /** Forget the tokens here and end the issuer's session where it offers that. */
  async signOut() {
    clearTimeout(this.renewTimer);
    const idToken = this.tokens?.idToken;
    this.tokens = null;
    const metadata = await this.metadata().catch(() => ({}));
    if (metadata.end_session_endpoint) {
      const query = new URLSearchParams({ client_id: this.config.clientId, post_logout_redirect_uri: `${location.origin}/` });
      if (idToken) query.set("id_token_hint", idToken);
      location.assign(`${metadata.end_session_endpoint}?${query}`);
    } else {
      location.assign(`${location.origin}/`);
    }
  }
}

export const signIn = new SignIn(CONFIG.auth ?? null);
