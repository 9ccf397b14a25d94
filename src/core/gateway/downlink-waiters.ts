/**
 * Parked long polls, per device: a poll arms a wake-up *before* it looks for work, so a task queued
 * between the look and the wait is never missed, then waits for the wake-up, its listen time or
 * its caller going away, whichever comes first. In-process: a poll parked on one replica is woken
 * by the change feed, which reaches every replica.
 */
export function createDownlinkWaiters() {
  const parked = new Map<string, Set<() => void>>();

  return {
    /**
     * Arms a wake-up for `deviceId`. `wait(ms, signal)` resolves on `wake(deviceId)` (also one that
     * came after arming but before waiting), after `ms`, or on abort; `disarm()` drops it unused.
     */
    arm(deviceId: string) {
      let woken = false;
      let resolveWait: (() => void) | undefined;
      const fire = () => {
        woken = true;
        resolveWait?.();
      };
      let set = parked.get(deviceId);
      if (!set) parked.set(deviceId, (set = new Set()));
      set.add(fire);
      const disarm = () => {
        set.delete(fire);
        if (set.size === 0 && parked.get(deviceId) === set) parked.delete(deviceId);
      };
      return {
        disarm,
        wait(ms: number, signal?: AbortSignal): Promise<void> {
          if (woken || signal?.aborted || ms <= 0) {
            disarm();
            return Promise.resolve();
          }
          return new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              signal?.removeEventListener("abort", done);
              disarm();
              resolve();
            };
            resolveWait = done;
            const timer = setTimeout(done, ms);
            signal?.addEventListener("abort", done, { once: true });
          });
        },
      };
    },

    /** Wakes every poll parked (or arming) for the device. */
    wake(deviceId: string): void {
      for (const fire of [...(parked.get(deviceId) ?? [])]) fire();
    },

    /** Wakes every parked poll (shutdown). */
    wakeAll(): void {
      for (const set of [...parked.values()]) for (const fire of [...set]) fire();
    },

    /** Polls parked now, per device (for tests and metrics). */
    count(deviceId?: string): number {
      if (deviceId !== undefined) return parked.get(deviceId)?.size ?? 0;
      let n = 0;
      for (const set of parked.values()) n += set.size;
      return n;
    },
  };
}

export type DownlinkWaiters = ReturnType<typeof createDownlinkWaiters>;
