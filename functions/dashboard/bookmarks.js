// Bookmarks and notes shared by everybody in the session: listed beside the timeline, drawn
// on it, clickable (seek + select). They live with the session on the server; a viewer
// learns of another's bookmark through the stream's `playback` event, whose
// `bookmarks_revision` moved, and reads the list again. Links to a moment (airport, day,
// time, range, filters, selection, optionally a bookmark) are made here too.

import { ApiError } from "./api.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

/** The URL of this page opening `moment` ({t, start, end, filters, select, bookmark}). */
export function momentLink(app, moment) {
  const link = new URL(location.pathname, location.origin);
  link.searchParams.set("airport", app.manifest.airport.airport_id);
  link.searchParams.set("day", app.manifest.service_date);
  link.searchParams.set("t", String(Math.round(moment.t)));
  link.searchParams.set("start", String(moment.start));
  link.searchParams.set("end", String(moment.end));
  const filters = Object.fromEntries(Object.entries(moment.filters ?? {}).filter(([, v]) => Array.isArray(v)));
  if (Object.keys(filters).length) link.searchParams.set("filters", JSON.stringify(filters));
  if (moment.select) link.searchParams.set("select", moment.select);
  if (moment.bookmark) {
    link.searchParams.set("session", app.sessionId); // its members open the bookmark itself
    link.searchParams.set("bookmark", moment.bookmark);
  }
  return link.toString();
}

/** "vehicle:FT-01" / "flight:J4…" of a bookmark's selection (or null). */
function selectionParam(selection) {
  if (selection?.vehicle_id) return `vehicle:${selection.vehicle_id}`;
  if (selection?.flight_id) return `flight:${selection.flight_id}`;
  return null;
}

export class Bookmarks {
  /**
   * @param {object} deps
   * @param {import("./api.js").Api} deps.api
   * @param {object} deps.app the dashboard's shared context
   * @param {(position: number) => Promise<any>} deps.seek
   * @param {(message: string) => void} deps.toast
   */
  constructor({ api, app, seek, toast }) {
    this.api = api;
    this.app = app;
    this.seek = seek;
    this.toast = toast;
    this.list = [];
    this.revision = -1;
    this.loading = null;
    this.focused = null;
  }

  bind() {
    $("bookmarks-button").addEventListener("click", () => {
      const popover = $("bookmarks-popover");
      popover.hidden = !popover.hidden;
      if (!popover.hidden) this.prepareForm();
    });
    $("bookmark-save").addEventListener("click", () => this.add());
    $("bookmark-text").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.add();
      }
    });
    $("moment-copy").addEventListener("click", () => this.copyMoment());
    this.app.timeline.onBookmark = (bookmark) => this.focus(bookmark);
  }

  /** The stream (or a view) says the bookmarks are at `revision`: read them if newer. */
  follow(revision) {
    if (revision === undefined || revision === this.revision) return;
    this.refresh();
  }

  async refresh() {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        const answer = await this.api.bookmarks(this.app.sessionId);
        const known = new Set(this.list.map((b) => b.bookmark_id));
        const first = this.revision < 0;
        this.revision = answer.revision;
        this.list = answer.bookmarks;
        this.render();
        // A co-watcher's new bookmark is announced (one's own was announced when saved).
        const fresh = answer.bookmarks.filter((b) => !known.has(b.bookmark_id) && b.author !== this.app.view.viewer);
        if (!first && fresh.length) {
          const b = fresh[fresh.length - 1];
          this.toast(t("bookmarks.added", { who: b.author, at: this.when(b), text: b.text }));
        }
      } catch (error) {
        if (!(error instanceof ApiError)) console.warn("dispatch-replay: bookmarks", error);
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  /** The form starts at the replay's current moment and selection. */
  prepareForm() {
    const { app } = this;
    $("bookmark-at").textContent = app.time.hms(app.clock.now());
    const vehicle = app.map.selectedId;
    $("bookmark-selection").textContent = vehicle ? t("bookmarks.withVehicle", { id: vehicle }) : "";
    $("bookmark-text").focus();
  }

  async add() {
    const { app } = this;
    const text = $("bookmark-text").value.trim();
    if (!text) {
      $("bookmark-text").focus();
      return;
    }
    const at = Math.floor(app.clock.now());
    const body = { at, text };
    if ($("bookmark-range").checked) {
      body.at = app.clock.rangeStart;
      body.end = app.clock.rangeEnd;
    }
    if (app.map.selectedId) body.selection = { vehicle_id: app.map.selectedId };
    else if (app.panels.highlighted) body.selection = { flight_id: app.panels.highlighted };
    try {
      await this.api.addBookmark(app.sessionId, body);
      $("bookmark-text").value = "";
      $("bookmark-range").checked = false;
      this.toast(t("bookmarks.saved"));
      await this.refresh();
    } catch (error) {
      this.toast(t("toast.error", { msg: error.message }));
    }
  }

  async remove(bookmark) {
    try {
      await this.api.deleteBookmark(this.app.sessionId, bookmark.bookmark_id);
      await this.refresh();
    } catch (error) {
      this.toast(t("toast.error", { msg: error.message }));
    }
  }

  /** Go to a bookmark: seek to its moment and select what it names. */
  focus(bookmark) {
    const { app } = this;
    this.focused = bookmark.bookmark_id;
    const selection = bookmark.selection ?? {};
    if (selection.vehicle_id) app.map.selectedId = selection.vehicle_id;
    if (selection.flight_id) app.panels.highlightFlight(selection.flight_id, bookmark.at);
    this.render();
    return this.seek(bookmark.at);
  }

  /** Open the bookmark named by a deep link once the list is known. */
  async focusById(bookmarkId) {
    await this.refresh();
    const bookmark = this.list.find((b) => b.bookmark_id === bookmarkId);
    if (bookmark) await this.focus(bookmark);
    else this.toast(t("bookmarks.notFound"));
  }

  when(bookmark) {
    const { time } = this.app;
    return bookmark.end ? `${time.hms(bookmark.at)}–${time.hms(bookmark.end)}` : time.hms(bookmark.at);
  }

  /** The bookmark's incident report (one HTML file), saved as a download. Fetched with
   * the page's credentials (a plain link would not carry them), then handed to the browser. */
  async downloadReport(bookmark) {
    try {
      const blob = await this.api.report(this.app.sessionId, bookmark.bookmark_id);
      const url = URL.createObjectURL(blob);
      const anchor = document.createElement("a");
      anchor.href = url;
      anchor.download = `incident-${this.app.manifest.airport.airport_id}-${bookmark.bookmark_id}.html`;
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      this.toast(error.message);
    }
  }

  render() {
    $("bookmarks-count").textContent = String(this.list.length);
    $("bookmarks-count").hidden = this.list.length === 0;
    const sorted = [...this.list].sort((a, b) => a.at - b.at || a.created_at - b.created_at);
    this.app.timeline.setBookmarks(sorted);
    const items = sorted.map((bookmark) => {
      const li = document.createElement("li");
      li.className = "bookmark";
      li.dataset.testid = "bookmark-item";
      li.setAttribute("data-testid", "bookmark-item");
      li.dataset.bookmarkId = bookmark.bookmark_id;
      li.classList.toggle("focused", bookmark.bookmark_id === this.focused);
      const go = document.createElement("button");
      go.type = "button";
      go.className = "bookmark-go";
      go.title = t("bookmarks.go");
      const when = document.createElement("span");
      when.className = "bookmark-when mono";
      when.textContent = this.when(bookmark);
      const text = document.createElement("span");
      text.className = "bookmark-text";
      text.textContent = bookmark.text;
      const meta = document.createElement("span");
      meta.className = "bookmark-meta muted";
      const selected = selectionParam(bookmark.selection);
      meta.textContent = [bookmark.author, selected ? selected.replace(":", " ") : null].filter(Boolean).join(" · ");
      go.append(when, text, meta);
      go.addEventListener("click", () => this.focus(bookmark));
      const link = document.createElement("button");
      link.type = "button";
      link.className = "btn ghost";
      link.textContent = t("bookmarks.link"); // text, not an emoji: no emoji font is assumed
      link.title = t("bookmarks.copyLink");
      link.addEventListener("click", () => this.copy(this.linkTo(bookmark)));
      const report = document.createElement("button");
      report.type = "button";
      report.className = "btn ghost";
      report.setAttribute("data-testid", "bookmark-report");
      report.textContent = t("bookmarks.report");
      report.title = t("bookmarks.reportTitle");
      report.addEventListener("click", () => this.downloadReport(bookmark));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon-btn";
      remove.textContent = "×";
      remove.title = t("bookmarks.delete");
      remove.hidden = !(bookmark.author === this.app.view.viewer || this.app.view.role === "owner");
      remove.addEventListener("click", () => this.remove(bookmark));
      li.append(go, link, report, remove);
      return li;
    });
    $("bookmark-list").replaceChildren(...items);
    $("bookmarks-empty").hidden = items.length > 0;
  }

  /** The session's filters as the page shows them (the stream keeps them current). */
  filtersShown() {
    return this.app.controls.shown?.filters ?? this.app.view.filters;
  }

  linkTo(bookmark) {
    const { app } = this;
    return momentLink(app, {
      t: bookmark.at,
      start: app.clock.rangeStart,
      end: app.clock.rangeEnd,
      filters: this.filtersShown(),
      select: selectionParam(bookmark.selection),
      bookmark: bookmark.bookmark_id,
    });
  }

  /** A link to what this page shows now: time, range, filters, selection. */
  currentMoment() {
    const { app } = this;
    return momentLink(app, {
      t: app.clock.now(),
      start: app.clock.rangeStart,
      end: app.clock.rangeEnd,
      filters: this.filtersShown(),
      select: app.map.selectedId ? `vehicle:${app.map.selectedId}` : app.panels.highlighted ? `flight:${app.panels.highlighted}` : null,
    });
  }

  copyMoment() {
    const link = this.currentMoment();
    $("moment-link").value = link;
    this.copy(link);
  }

  async copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      this.toast(t("bookmarks.linkCopied"));
    } catch {
      $("moment-link").value = text;
      $("moment-link").select();
    }
  }
}
