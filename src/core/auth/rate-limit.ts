import type { Clock } from "../clock.js";

/**
 * The login throttle's policy. Three counters per attempt, all reserved before the password is
 * checked (so 30 parallel guesses cost as many password checks as sequential ones):
 *
 * - `pair` (user name + client address): the first `freeAttempts` failures are free, then each
 *   one doubles the wait before the next, from `backoffBaseMs` up to `backoffMaxMs`. A stranger's
 *   failures land on the stranger's own pair, so they cannot slow the owner down elsewhere.
 * - `user` and `address`: ceilings per window against guessing spread over many addresses, or one
 *   address spraying many names. Neither applies to a known-good pair (an address that has signed
 *   in as that user before), so no stranger can lock a user out of the address they use.
 */
export interface LoginLimits {
  /** Failures per user name and address before the back-off starts. @default 5 */
  freeAttempts: number;
  /** The first back-off, ms; each further failure doubles it. @default 1000 */
  backoffBaseMs: number;
  /** The longest back-off, ms. @default 15 minutes */
  backoffMaxMs: number;
  /** Failures per user name per window, from addresses not known for that user. @default 50 */
  perUser: number;
  /** Failures per client address per window, over all names it is not known for. @default 20 */
  perAddress: number;
  /** How long a ceiling's count lives, and how long a back-off is remembered after it ends, ms. @default 15 minutes */
  windowMs: number;
}

export type ThrottleScope = "pair" | "user" | "address";

/** One counter as stored. A counter whose `resetTime` has passed counts as fresh. */
export interface ThrottleCounter {
  failures: number;
  /** No attempt under this counter before this time. */
  nextTime: Date;
  resetTime: Date;
}

/** The three counters of one (user, address); `undefined` when absent, `null` in a write: delete it. */
export type ThrottleCounters = { [S in ThrottleScope]?: ThrottleCounter };
export type ThrottleWrite = { [S in ThrottleScope]?: ThrottleCounter | null };

/**
 * Where the counters live (PostgreSQL adapter: `src/store/login-throttle-store.ts`). Shared by
 * every replica, so a second replica does not double an attacker's budget.
 */
export interface LoginThrottleRepository {
  /**
   * One atomic step: locks the counters of (`user`, `address`), passes them and whether the pair
   * is known good to `decide`, and stores its `write` (and the known address, with `remember`).
   * Two concurrent steps on a shared counter run one after the other.
   */
  step<T>(
    user: string,
    address: string,
    now: Date,
    decide: (current: ThrottleCounters, knownGood: boolean) => { write?: ThrottleWrite; remember?: boolean; result: T },
  ): Promise<T>;
}

/** An attempt that may go ahead; hand it back to `succeeded` if the password was right. */
export interface Reservation {
  user: string;
  address: string;
  /** Whether the user and address ceilings counted it (they skip known-good pairs). */
  countedCeilings: boolean;
  /** When the pair may try again, as this reservation set it (now, while attempts are free). */
  pairNextTime: Date;
}

export type ReserveResult = { ok: true; reservation: Reservation } | { ok: false; by: ThrottleScope; retryMs: number };

const EPOCH = new Date(0);

/** The counter as it stands at `now`: expired ones start again from zero. */
function live(c: ThrottleCounter | undefined, now: Date): ThrottleCounter {
  return c && c.resetTime.getTime() > now.getTime() ? c : { failures: 0, nextTime: EPOCH, resetTime: EPOCH };
}

/** The wait after the `n`-th reserved failure of a pair: none while free, then doubling. */
export function backoffMs(n: number, l: LoginLimits): number {
  if (n < l.freeAttempts) return 0;
  // 2^30 × 1 ms already exceeds any sensible maximum; the cap keeps the arithmetic finite.
  return Math.min(l.backoffMaxMs, l.backoffBaseMs * 2 ** Math.min(30, n - l.freeAttempts));
}

/** The policy's decision for one attempt (pure: tested without a database). */
export function decideReserve(
  c: ThrottleCounters,
  knownGood: boolean,
  now: Date,
  l: LoginLimits,
  who: { user: string; address: string },
): { write?: ThrottleWrite; result: ReserveResult } {
  const t = now.getTime();
  const pair = live(c.pair, now);
  const refuse = (by: ThrottleScope, until: Date) => ({ result: { ok: false as const, by, retryMs: Math.max(1, until.getTime() - t) } });
  if (pair.nextTime.getTime() > t) return refuse("pair", pair.nextTime);
  const user = live(c.user, now);
  const address = live(c.address, now);
  if (!knownGood) {
    if (user.failures >= l.perUser) return refuse("user", user.resetTime);
    if (address.failures >= l.perAddress) return refuse("address", address.resetTime);
  }
  const n = pair.failures + 1;
  const nextTime = new Date(t + backoffMs(n, l));
  const write: ThrottleWrite = { pair: { failures: n, nextTime, resetTime: new Date(nextTime.getTime() + l.windowMs) } };
  if (!knownGood) {
    const bump = (x: ThrottleCounter): ThrottleCounter => ({
      failures: x.failures + 1,
      nextTime: EPOCH,
      // A window starts with its first failure; later ones do not extend it.
      resetTime: x.failures === 0 ? new Date(t + l.windowMs) : x.resetTime,
    });
    write.user = bump(user);
    write.address = bump(address);
  }
  return { write, result: { ok: true, reservation: { ...who, countedCeilings: !knownGood, pairNextTime: nextTime } } };
}

/** After the right password: the pair starts afresh, the ceilings get their attempt back. */
export function decideSuccess(c: ThrottleCounters, r: Reservation, now: Date): { write: ThrottleWrite; remember: true; result: void } {
  const refund = (x: ThrottleCounter | undefined): ThrottleCounter | undefined => {
    const v = live(x, now);
    return v.failures > 0 ? { ...v, failures: v.failures - 1 } : undefined;
  };
  const write: ThrottleWrite = { pair: null };
  if (r.countedCeilings) {
    const user = refund(c.user);
    const address = refund(c.address);
    if (user) write.user = user;
    if (address) write.address = address;
  }
  return { write, remember: true, result: undefined };
}

export type LoginLimiter = ReturnType<typeof createLoginLimiter>;

/** Pairs this process remembers as backed off; beyond this many, expired ones are dropped. */
const LOCAL_BACKOFF_ENTRIES = 10_000;

/**
 * The throttle the auth service calls: `reserve` before checking a password, `succeeded` after
 * a right one. A wrong password needs no call: its attempt was counted when it was reserved.
 *
 * A pair this process has seen backed off is refused from memory until its wait ends, so a
 * stream of refused guesses costs the database nothing. That can only refuse early, never allow:
 * the database stays the one that lets an attempt through, and a wait is only ever extended (a
 * success ends it, and this process forgets it then; another replica's copy lapses by itself).
 */
export function createLoginLimiter(limits: LoginLimits, repo: LoginThrottleRepository, clock: Clock) {
  const backedOff = new Map<string, number>();
  const pairKey = (user: string, address: string) => `${user}\n${address}`;
  const remember = (key: string, untilMs: number, nowMs: number) => {
    if (untilMs <= nowMs) return;
    if (backedOff.size >= LOCAL_BACKOFF_ENTRIES) {
      for (const [k, until] of backedOff) if (until <= nowMs) backedOff.delete(k);
      if (backedOff.size >= LOCAL_BACKOFF_ENTRIES) backedOff.clear();
    }
    backedOff.set(key, untilMs);
  };
  return {
    async reserve(user: string, address: string): Promise<ReserveResult> {
      const now = clock.now();
      const key = pairKey(user, address);
      const until = backedOff.get(key);
      if (until !== undefined && until > now.getTime()) return { ok: false, by: "pair", retryMs: until - now.getTime() };
      const r = await repo.step(user, address, now, (c, knownGood) => decideReserve(c, knownGood, now, limits, { user, address }));
      if (r.ok) remember(key, r.reservation.pairNextTime.getTime(), now.getTime());
      else if (r.by === "pair") remember(key, now.getTime() + r.retryMs, now.getTime());
      return r;
    },
    async succeeded(r: Reservation): Promise<void> {
      const now = clock.now();
      backedOff.delete(pairKey(r.user, r.address));
      await repo.step(r.user, r.address, now, (c) => decideSuccess(c, r, now));
    },
  };
}
