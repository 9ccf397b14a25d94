import type { Clock } from "../../src/core/clock.js";

/** A Clock that moves only when told: tests jump over hours and DST changes without sleeping. */
export interface FakeClock extends Clock {
  set(t: Date | string): void;
  advance(ms: number): Date;
}

export function fakeClock(start: Date | string): FakeClock {
  let now = new Date(start).getTime();
  return {
    now: () => new Date(now),
    set(t) {
      now = new Date(t).getTime();
    },
    advance(ms) {
      now += ms;
      return new Date(now);
    },
  };
}
