import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed } from "../ports/index.js";
import { createTickLoop } from "../tick-loop.js";
import type { CredentialRepository } from "../ports/auth.js";

export interface SessionRevocationsDeps {
  repo: Pick<CredentialRepository, "revokedSessions" | "pruneRevokedSessions">;
  /** Ended session ids, from every replica (RabbitMQ with AMQP_URL; in process otherwise). */
  feed: ChangeFeed<string[]>;
  clock: Clock;
  log: CoreLogger;
  /** How long a revocation matters: the longest an access token verifies after issue, ms. */
  windowMs: number;
  /** How often the table is re-read, ms: the staleness bound when the feed missed a message (or there is none). */
  pollMs: number;
}

export type SessionRevocations = ReturnType<typeof createSessionRevocations>;

/** The "session" of an API key: recorded when the key is revoked, so streams opened with it end too. */
export const apiKeySession = (id: string): string => `api_key:${id}`;

/**
 * The sessions whose access tokens are refused, as an in-memory set checked on every call (a map
 * lookup: the hot path never waits for the database).
 *
 * The database (`session_revocations`) is the record. The replica that ends a session adds it here
 * before answering, and publishes it on the feed so the others add it within the bus latency; every
 * replica also re-reads the table every `pollMs`, which bounds the staleness to `pollMs` (plus one
 * query) when a feed message was lost or replicas share only the database. An entry is kept for
 * `windowMs` — afterwards every token of that session has expired anyway — so the set holds only
 * the sessions ended within the last access-token lifetime.
 */
export function createSessionRevocations(d: SessionRevocationsDeps) {
  const { repo, feed, clock, log } = d;
  /** Session id → when it was ended here (ms), for expiring entries. */
  const ended = new Map<string, number>();
  /** Open calls (streams) to end when their session ends. */
  const watchers = new Map<string, Set<() => void>>();
  let lastPrune = 0;

  function add(sessions: Iterable<string>, at: number): void {
    for (const s of sessions) {
      if (ended.has(s)) continue;
      ended.set(s, at);
      const w = watchers.get(s);
      watchers.delete(s);
      for (const cb of w ?? []) {
        try {
          cb();
        } catch (err) {
          log.error({ err }, "ending a call of an ended session failed");
        }
      }
    }
  }

  const unsubscribe = feed.subscribe((sessions) => add(sessions, clock.now().getTime()));

  async function sync(): Promise<void> {
    const now = clock.now().getTime();
    const since = new Date(now - d.windowMs);
    add(await repo.revokedSessions(since), now);
    for (const [s, at] of ended) if (at < now - d.windowMs) ended.delete(s);
    // Rows older than the window protect nothing; one replica's delete a minute is plenty.
    if (now - lastPrune >= 60_000) {
      lastPrune = now;
      await repo.pruneRevokedSessions(since);
    }
  }

  const loop = createTickLoop(async () => (await sync(), d.pollMs), {
    defaultDelayMs: d.pollMs,
    onError: (err) => log.error({ err }, "reading ended sessions failed (retrying); sessions ended on other replicas may be accepted until it succeeds"),
  });

  return {
    /** Whether the session's access tokens are refused. */
    isEnded: (session: string): boolean => ended.has(session),
    /**
     * Calls `onEnd` once when the session ends (at once if it already has): how an open stream
     * authenticated by one of its access tokens is ended. Returns the function that stops watching.
     */
    watch(session: string, onEnd: () => void): () => void {
      if (ended.has(session)) {
        onEnd();
        return () => {};
      }
      let set = watchers.get(session);
      if (!set) watchers.set(session, (set = new Set()));
      set.add(onEnd);
      return () => {
        set.delete(onEnd);
        if (set.size === 0 && watchers.get(session) === set) watchers.delete(session);
      };
    },
    /** Refuses these sessions here at once and tells every replica (the caller has committed them to the database). */
    ended(sessions: readonly string[]): void {
      if (sessions.length === 0) return;
      add(sessions, clock.now().getTime());
      feed.publish([...sessions]);
    },
    /** Loads the table once (before the API serves), then re-reads it every `pollMs`. */
    async start(): Promise<void> {
      await sync();
      loop.start();
    },
    async stop(): Promise<void> {
      unsubscribe();
      await loop.stop();
    },
    /** Sessions currently held (for tests and metrics). */
    size: () => ended.size,
  };
}
