// Data quality of the replayed day, from its manifest: what the chunker kept, quarantined
// (by reason), dropped as duplicates, amended (a value dropped and derived, the record
// kept), and what it skipped of the reference data. A chip on the map opens a small panel.
import { label, onLanguageChange, t } from "./i18n.js";

/** Above this share of a kind's records quarantined, the chip warns (as `chunk` does). */
export const WARN_LOST = 0.05;

const KINDS = ["positions", "tasks", "flights", "notifications"];

/** The day's quality, summed from manifest.counts and manifest.reference_report. */
export function summarise(manifest) {
  const kinds = [];
  let accepted = 0;
  let quarantined = 0;
  for (const kind of KINDS) {
    const counts = manifest.counts?.[kind];
    if (!counts) continue;
    const rejected = Object.entries(counts.rejected ?? {}).sort((a, b) => b[1] - a[1]);
    const amended = Object.entries(counts.amended ?? {}).sort((a, b) => b[1] - a[1]);
    const lost = rejected.reduce((sum, [, n]) => sum + n, 0);
    const total = counts.accepted + lost;
    accepted += counts.accepted;
    quarantined += lost;
    kinds.push({
      kind,
      accepted: counts.accepted,
      duplicates: counts.duplicates ?? 0,
      quarantined: lost,
      lostShare: total ? lost / total : 0,
      rejected,
      amended,
      amendedTotal: amended.reduce((sum, [, n]) => sum + n, 0),
    });
  }
  const skipped = Object.entries(manifest.reference_report?.skipped ?? {}).sort((a, b) => b[1] - a[1]);
  const total = accepted + quarantined;
  const keptShare = total ? accepted / total : 1;
  const warn = kinds.some((k) => k.lostShare > WARN_LOST) || skipped.length > 0;
  return { kinds, skipped, keptShare, warn };
}

function percent(share) {
  const value = share * 100;
  return `${value >= 99.95 || value === 0 ? value.toFixed(0) : value.toFixed(1)}%`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function reasonList(entries) {
  const list = el("ul", "quality-reasons");
  for (const [reason, n] of entries) {
    const item = el("li");
    item.dataset.reason = reason;
    item.append(el("span", "", label("quality_reason", reason)), el("span", "mono", n.toLocaleString()));
    list.append(item);
  }
  return list;
}

export class QualityPanel {
  /**
   * @param {HTMLButtonElement} chip the map's data-quality chip (toggles the panel)
   * @param {HTMLElement} panel where the details go
   * @param {object} manifest the day's manifest
   */
  constructor(chip, panel, manifest) {
    this.chip = chip;
    this.panel = panel;
    this.summary = summarise(manifest);
    chip.addEventListener("click", () => {
      panel.hidden = !panel.hidden;
      chip.setAttribute("aria-expanded", String(!panel.hidden));
    });
    onLanguageChange(() => this.render());
    this.render();
  }

  render() {
    const { kinds, skipped, keptShare, warn } = this.summary;
    this.chip.textContent = t("quality.chip", { kept: percent(keptShare) });
    this.chip.classList.toggle("warn", warn);
    this.chip.title = t("quality.title");
    this.chip.dataset.warn = String(warn);
    const body = [el("h3", "", t("quality.title"))];
    for (const k of kinds) {
      const row = el("section", "quality-kind");
      row.dataset.kind = k.kind;
      row.classList.toggle("warn", k.lostShare > 0.05);
      const head = el("div", "quality-head");
      head.append(
        el("strong", "", t(`quality.kind.${k.kind}`)),
        el("span", "mono", t("quality.kept", { n: k.accepted.toLocaleString() })),
      );
      row.append(head);
      const facts = el("div", "quality-facts muted");
      const parts = [t("quality.quarantined", { n: k.quarantined.toLocaleString(), share: percent(k.lostShare) })];
      if (k.duplicates) parts.push(t("quality.duplicates", { n: k.duplicates.toLocaleString() }));
      if (k.amendedTotal) parts.push(t("quality.amended", { n: k.amendedTotal.toLocaleString() }));
      facts.textContent = parts.join(" · ");
      row.append(facts);
      if (k.rejected.length) row.append(reasonList(k.rejected));
      if (k.amended.length) {
        row.append(el("div", "quality-sub muted", t("quality.amendedTitle")), reasonList(k.amended));
      }
      body.push(row);
    }
    if (skipped.length) {
      const row = el("section", "quality-kind warn");
      row.dataset.kind = "reference";
      row.append(el("strong", "", t("quality.reference")), reasonList(skipped));
      body.push(row);
    }
    body.push(el("p", "quality-note muted", t("quality.note")));
    this.panel.replaceChildren(...body);
  }
}
