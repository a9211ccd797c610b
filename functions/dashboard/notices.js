// Notification texts in the page's language. A notification row carries `code` (its kind),
// `level`, `text` (the dispatch system's own English sentence) and the ids it relates to —
// no structured parameters. So a text is translated by its code: the parameters are read
// from the sentence with that code's pattern (the dispatch system's wording, see
// synthetic/ and docs/data-format.md). A sentence that does not match keeps its meaning
// visible: the kind's name in the page's language, then the raw text. The raw text is
// always kept for the tooltip.

import { label, language } from "./i18n.js";

/** "Baggage unload" / "baggage tractor" -> "baggage_unload" / "baggage_tractor". */
const enumOf = (words) => words.trim().toLowerCase().replace(/\s+/g, "_");

const KINDS = {
  flight_delayed: {
    zh: "航班延误",
    pattern: /^(\S+) (from|to) (\S+) delayed (\d+) min, new (in|off)-block (\d\d:\d\d)$/,
    zh_text: ([callsign, direction, route, minutes, block, at]) =>
      `${callsign}（${direction === "from" ? "来自" : "前往"}${route}）延误 ${minutes} 分钟，` +
      `新的${block === "in" ? "上" : "撤"}轮挡时间 ${at}`,
  },
  task_reassigned: {
    zh: "任务改派",
    pattern: /^(.+) task reassigned from (\S+) to (\S+)$/,
    zh_text: ([task, from, to]) => `${label("task_type", enumOf(task))}任务由 ${from} 改派给 ${to}`,
  },
  vehicle_conflict: {
    zh: "车辆冲突",
    pattern: /^No (.+) free in time for (.+) at stand (\S+): (\S+) assigned, (\d+) min late$/,
    zh_text: ([vehicle, task, stand, assigned, minutes]) =>
      `没有空闲的${label("vehicle_type", enumOf(vehicle))}及时执行 ${stand} 机位的` +
      `${label("task_type", enumOf(task))}：已指派 ${assigned}，晚到 ${minutes} 分钟`,
  },
  task_late: {
    zh: "任务延迟",
    pattern: /^(.+) at stand (\S+) not started, (\d+) min behind plan$/,
    zh_text: ([task, stand, minutes]) =>
      `${stand} 机位的${label("task_type", enumOf(task))}尚未开始，落后计划 ${minutes} 分钟`,
  },
  gps_lost: {
    zh: "GPS 丢失",
    pattern: /^No GPS fix from (\S+) for (\d+) s$/,
    zh_text: ([vehicle, seconds]) => `${vehicle} 已 ${seconds} 秒没有 GPS 定位`,
  },
  stand_changed: {
    zh: "机位变更",
    pattern: /^(\S+) stand changed (\S+) → (\S+)$/,
    zh_text: ([callsign, from, to]) => `${callsign} 机位变更：${from} → ${to}`,
  },
  flight_cancelled: {
    zh: "航班取消",
    pattern: /^(\S+) from (\S+) cancelled; turnaround tasks withdrawn$/,
    zh_text: ([callsign, route]) => `${callsign}（来自${route}）已取消，过站保障任务已撤销`,
  },
};

/** The name of a notification kind in the page's language (the code if unknown). */
export function noticeKind(code) {
  const kind = KINDS[code];
  if (!kind) return code ?? "";
  return language() === "zh" ? kind.zh : code;
}

/**
 * What the feed shows for notification row `n`: {text, translated} — `translated` false
 * when the raw text is shown as is (English page, or a sentence no pattern knows).
 */
export function noticeText(n) {
  const raw = n.text ?? "";
  if (language() !== "zh") return { text: raw, translated: false };
  const kind = KINDS[n.code];
  if (!kind) return { text: raw, translated: false };
  const match = kind.pattern.exec(raw.trim());
  if (!match) return { text: `${kind.zh}：${raw}`, translated: false };
  return { text: kind.zh_text(match.slice(1)), translated: true };
}
