/**
 * What ending sessions costs: the per-call check of an access token against the ended sessions,
 * and each replica's poll of the `session_revocations` table.
 *
 *   npx tsx tests/bench/session-check.bench.ts
 *   BENCH_ENDED=100000 BENCH_CALLS=20000 npx tsx tests/bench/session-check.bench.ts
 *
 * - per call: `AuthService.authenticate` of a valid ES256 token while BENCH_ENDED sessions are
 *   ended (held in memory), against the baseline measured in the same run: `verify` of the same
 *   token alone (what every call paid before sessions could end). Sequential, one core, five
 *   alternated rounds of BENCH_CALLS each, best round of each kept.
 * - per poll: `revokedSessions(since)` on a real PostgreSQL (TEST_POSTGRES_URL, a fresh database,
 *   every migration) holding BENCH_ENDED rows within the window, median of 20 reads.
 *
 * Prints figures and writes tests/bench/results/session-check-latest.json; never fails on timing.
 */
import { randomUUID } from "node:crypto";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import type { CredentialRepository, SigningKey } from "../../src/core/ports/auth.js";
import { createAuthService } from "../../src/core/auth/auth-service.js";
import { createSessionRevocations } from "../../src/core/auth/session-revocations.js";
import { createTokenIssuer } from "../../src/core/auth/tokens.js";
import { systemClock } from "../../src/core/clock.js";
import { createLogger } from "../../src/log.js";
import { createCredentialStore } from "../../src/store/credential-store.js";
import { openDatabase } from "../../src/store/database.js";
import { freshDatabase } from "../helpers/postgres.js";
import { createCleanups, envNumber, gitDescribe, runBench, writeResults } from "./lib/harness.js";
import { now, summarize } from "./lib/stats.js";

const ENDED = envNumber("BENCH_ENDED", 10_000, 1);
const CALLS = envNumber("BENCH_CALLS", 5000, 100);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

async function perCall() {
  const keys: SigningKey[] = [];
  const creds = {
    signingKeys: async () => keys,
    insertSigningKey: async (k: SigningKey) => void keys.push(k),
    pruneSigningKeys: async () => {},
    revokedSessions: async () => [],
    pruneRevokedSessions: async () => {},
  } as unknown as CredentialRepository;
  const tokens = createTokenIssuer({
    creds,
    clock: systemClock,
    log: silent,
    issuer: "tether",
    audience: "tether-api",
    accessTtlMs: 900_000,
    rotateMs: 86_400_000,
  });
  await tokens.rotate();
  const sessions = createSessionRevocations({
    repo: creds,
    feed: createMemoryFeed(),
    clock: systemClock,
    log: silent,
    windowMs: tokens.maxTokenAgeMs,
    pollMs: 60_000,
  });
  sessions.ended(Array.from({ length: ENDED }, () => randomUUID()));
  // Only the bearer path is exercised: login, users and the limiter are not reached.
  const auth = createAuthService({
    users: {} as never,
    creds,
    tokens,
    limiter: {} as never,
    sessions,
    clock: systemClock,
    log: silent,
    refreshTtlMs: 86_400_000,
  });
  const { token } = await tokens.sign("alice", randomUUID());
  const time = async (fn: () => Promise<unknown>) => {
    for (let i = 0; i < 200; i++) await fn(); // warm-up
    const t0 = now();
    for (let i = 0; i < CALLS; i++) await fn();
    return ((now() - t0) / CALLS) * 1000; // µs per call
  };
  // Alternated rounds, best of each: on a loaded machine one-shot figures swing by more than the difference.
  let verifyUs = Infinity;
  let authenticateUs = Infinity;
  for (let round = 0; round < 5; round++) {
    verifyUs = Math.min(verifyUs, await time(() => tokens.verify(token)));
    authenticateUs = Math.min(authenticateUs, await time(() => auth.authenticate(token)));
  }
  const lookups = 1_000_000;
  const probe = randomUUID();
  const t0 = now();
  let hits = 0;
  for (let i = 0; i < lookups; i++) if (sessions.isEnded(probe)) hits++;
  const lookupNs = ((now() - t0) / lookups) * 1e6 + hits;
  return { verifyUs, authenticateUs, lookupNs };
}

async function perPoll(cleanups: ReturnType<typeof createCleanups>) {
  const fresh = await freshDatabase("tether_bench_sessions");
  cleanups.push(() => fresh.drop());
  const db = await openDatabase({ url: fresh.url, dataDir: "", maxConnections: 2, log: createLogger("silent") });
  cleanups.push(() => db.close());
  const at = new Date();
  for (let i = 0; i < ENDED; i += 5000) {
    const n = Math.min(5000, ENDED - i);
    await db.sql`INSERT INTO session_revocations ${db.sql(Array.from({ length: n }, () => ({ session: randomUUID(), user_name: "u", revoke_time: at })))}`;
  }
  const store = createCredentialStore(db.sql);
  const since = new Date(at.getTime() - 900_000);
  const samples: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t0 = now();
    const rows = await store.revokedSessions(since);
    if (i > 0) samples.push(now() - t0);
    if (rows.length !== ENDED) throw new Error(`read ${rows.length} rows, expected ${ENDED}`);
  }
  return summarize(samples);
}

runBench(async () => {
  const cleanups = createCleanups();
  try {
    console.log(`commit ${gitDescribe()}; ${ENDED} ended sessions, ${CALLS} calls`);
    const c = await perCall();
    console.log(
      `per call: verify alone ${c.verifyUs.toFixed(1)} µs (baseline) · authenticate with the ended-session check ${c.authenticateUs.toFixed(1)} µs (×${(c.authenticateUs / c.verifyUs).toFixed(2)}) · the lookup itself ${c.lookupNs.toFixed(0)} ns`,
    );
    const p = await perPoll(cleanups);
    console.log(`per poll (PostgreSQL, ${ENDED} rows in the window): p50 ${p.p50.toFixed(1)} ms, max ${p.max.toFixed(1)} ms`);
    await writeResults("session-check", { commit: gitDescribe(), ended: ENDED, calls: CALLS, perCall: c, perPollMs: p });
  } finally {
    await cleanups.run();
  }
});
