// Lateness of a task at replay time `at`: the one rule of docs/api.md ("Lateness"). The
// times are the rows' own (task rows and the derived `current` task carry the planned
// window and the actual times the chunker kept); only the comparison with the clock is here.

export const LATE_MS = 60_000;

/**
 * @param {{status: string, planned_start: number, planned_end: number,
 *   actual_start?: number|null, actual_end?: number|null}} task
 * @param {number} at replay time (ms)
 * @returns {{startDelay: number|null, overrun: number|null, delay: number|null,
 *   late: boolean, overdue: boolean, lateNow: boolean}}
 */
export function lateness(task, at) {
  if (task.status === "cancelled") {
    return { startDelay: null, overrun: null, delay: null, late: false, overdue: false, lateNow: false };
  }
  const started = task.actual_start ?? null;
  const ended = task.status === "completed" ? task.actual_end ?? null : null;
  const startDelay = started !== null ? started - task.planned_start : Math.max(0, at - task.planned_start);
  const overrun = ended !== null ? ended - task.planned_end : task.status === "completed" ? null : Math.max(0, at - task.planned_end);
  const delay = Math.max(startDelay, overrun ?? -Infinity);
  const overdue = task.status !== "completed" && at > task.planned_end;
  const lateNow = task.status !== "completed"
    && ((started === null && at - task.planned_start >= LATE_MS) || at - task.planned_end >= LATE_MS);
  return { startDelay, overrun, delay, late: delay >= LATE_MS, overdue, lateNow };
}

/** Whole minutes, rounded down for lateness (59 s late reads "0 min"). */
export function minutes(ms) {
  return ms === null ? null : Math.trunc(ms / 60_000);
}
