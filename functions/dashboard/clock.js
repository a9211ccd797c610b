// Replay time: the playback clock as the dashboard estimates it between playback events,
// and formatting of replay instants in the airport's local time.

/**
 * The session's playback clock, re-anchored on every playback event (or session view) and
 * extrapolated with the speed in between, on the monotonic performance clock so a wall
 * clock step on this machine cannot move it.
 */
export class PlaybackClock {
  constructor() {
    this.state = "paused"; // playing | paused
    this.status = "paused"; // playing | paused | ended
    this.speed = 1;
    this.rangeStart = 0;
    this.rangeEnd = 1;
    this.loop = false;
    this.version = 0;
    this.anchorPosition = 0;
    this.anchorPerf = performance.now();
  }

  /**
   * From a `playback` event's data. Older versions than the one shown are ignored. Each
   * message's position is the clock when it was sent, anchored when it is handled: the
   * estimate is never ahead, and the later of two views of one version (the control answer,
   * the stream's event) can be the one handled last, so the estimate keeps the further.
   */
  fromPlayback(p) {
    if (p.version < this.version) return false;
    const same = p.version === this.version && p.state === "playing" && this.status === "playing";
    const before = same ? this.now() : null;
    this.version = p.version;
    this.state = p.state === "paused" ? "paused" : "playing";
    this.status = p.state;
    this.speed = p.speed;
    this.rangeStart = p.range.start;
    this.rangeEnd = p.range.end;
    this.loop = p.loop;
    this.anchorPosition = p.position;
    this.anchorPerf = performance.now();
    if (before !== null) this.reached(before);
    return true;
  }

  /** From a session view's clock (REST answers). */
  fromView(view) {
    const c = view.clock;
    return this.fromPlayback({
      state: c.status,
      speed: c.speed,
      position: c.position,
      range: { start: c.range_start, end: c.range_end },
      loop: c.loop,
      version: view.version,
    });
  }

  /**
   * The session's clock at this version has reached `position` (a frame rendered there was
   * sent, or an earlier view said so): an estimate behind it is late, and moves up to it.
   * It falls behind when its anchor event was handled late (a busy page takes its events
   * late: at 1024x each 100 ms of that is 102 s of replay, for as long as the anchor
   * stands). Returns whether it moved.
   */
  reached(position) {
    if (this.status !== "playing") return false;
    const now = this.now();
    if (position <= now) return false;
    // Looping, a frame more than half a pass ahead is from before a wrap this estimate made.
    if (this.loop && position - now > (this.rangeEnd - this.rangeStart) / 2) return false;
    this.anchorPosition = Math.min(position, this.rangeEnd - 1);
    this.anchorPerf = performance.now();
    return true;
  }

  /** The stream reached the end of the range. */
  markEnded(position) {
    this.status = "ended";
    if (Number.isFinite(position)) {
      this.anchorPosition = position;
      this.anchorPerf = performance.now();
    }
  }

  get playing() {
    return this.status === "playing";
  }

  /** Estimated replay position (epoch ms) now. */
  now() {
    const last = this.rangeEnd - 1;
    if (this.status !== "playing") return Math.min(Math.max(this.anchorPosition, this.rangeStart), last);
    let position = this.anchorPosition + (performance.now() - this.anchorPerf) * this.speed;
    if (position > last) {
      if (!this.loop) return last;
      const span = this.rangeEnd - this.rangeStart;
      position = this.rangeStart + ((position - this.rangeStart) % span);
    }
    return Math.max(position, this.rangeStart);
  }
}

const formatters = new Map();
const zoneNames = new Map();

function formatter(timeZone, options) {
  const key = timeZone + JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", { timeZone, hourCycle: "h23", ...options });
    formatters.set(key, f);
  }
  return f;
}

function parts(ms, timeZone) {
  const out = {};
  const f = formatter(timeZone, {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  for (const p of f.formatToParts(new Date(ms))) out[p.type] = p.value;
  return out;
}

/** Airport-local time formatting for one timezone. */
export class AirportTime {
  constructor(timeZone) {
    this.timeZone = timeZone;
  }

  /** "HH:MM:SS" */
  hms(ms) {
    const p = parts(ms, this.timeZone);
    return `${p.hour}:${p.minute}:${p.second}`;
  }

  /** "HH:MM" (or "—" for null) */
  hm(ms) {
    if (ms === null || ms === undefined) return "—";
    const p = parts(ms, this.timeZone);
    return `${p.hour}:${p.minute}`;
  }

  /** "YYYY-MM-DD" */
  date(ms) {
    const p = parts(ms, this.timeZone);
    return `${p.year}-${p.month}-${p.day}`;
  }

  /** Offset of the zone from UTC at ms, in minutes. */
  offsetMinutes(ms) {
    const p = parts(ms, this.timeZone);
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
  }

  /** "UTC+8", "UTC-3:30" */
  offsetLabel(ms) {
    const minutes = this.offsetMinutes(ms);
    const sign = minutes < 0 ? "-" : "+";
    const abs = Math.abs(minutes);
    const h = Math.floor(abs / 60);
    const m = abs % 60;
    return `UTC${sign}${h}${m ? `:${String(m).padStart(2, "0")}` : ""}`;
  }

  /** The zone's long name at ms in language `lang` ("China Standard Time", "中国标准时间"). */
  zoneName(ms, lang) {
    const locale = lang === "zh" ? "zh-CN" : "en-GB";
    const key = `${this.timeZone}|${locale}`;
    let f = zoneNames.get(key);
    if (!f) {
      f = new Intl.DateTimeFormat(locale, { timeZone: this.timeZone, timeZoneName: "long" });
      zoneNames.set(key, f);
    }
    const part = f.formatToParts(new Date(ms)).find((p) => p.type === "timeZoneName");
    return part ? part.value : this.timeZone;
  }

  /** Epoch ms of local wall time "YYYY-MM-DD" + "HH:MM[:SS]" in this zone. */
  toEpoch(date, time) {
    const [y, mo, d] = date.split("-").map(Number);
    const [h, mi, s = 0] = time.split(":").map(Number);
    const wall = Date.UTC(y, mo - 1, d, h, mi, s);
    // Two passes settle the offset, also next to a DST change.
    let guess = wall - this.offsetMinutes(wall) * 60000;
    guess = wall - this.offsetMinutes(guess) * 60000;
    return guess;
  }
}
