import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ClientConfig } from "pg";
import type { Logger } from "pino";

/**
 * The migrations folder shipped with the package (SQL files, shared by PGlite and PostgreSQL), at
 * the package root: the nearest `migrations/` above this module, which is src/store/ when run from
 * source (tests) and a chunk in dist/ when compiled (scripts/build-dist.js).
 */
export const MIGRATIONS_DIR = nearestMigrations(path.dirname(fileURLToPath(import.meta.url)));

function nearestMigrations(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "migrations"))) return path.join(dir, "migrations");
    if (path.dirname(dir) === dir) throw new Error(`no migrations/ folder above ${from}`);
  }
}

/**
 * Whether `applied` (the names in `pgmigrations`) differs from the migration files: false only
 * when every file was applied and nothing else was, so a start with nothing to do skips
 * node-pg-migrate; any other case (new files, or names it does not know) goes through it, which
 * applies or refuses as it always did.
 */
export function migrationsPending(applied: readonly string[]): boolean {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => /\.(sql|js|ts)$/.test(f))
    .map((f) => f.replace(/\.[^.]+$/, ""));
  const done = new Set(applied);
  return files.length !== done.size || files.some((f) => !done.has(f));
}

/**
 * Applies every pending migration. node-pg-migrate takes a PostgreSQL advisory lock, so several
 * replicas starting at once apply each migration exactly once.
 */
export async function migrate(databaseUrl: string | ClientConfig, log: Logger): Promise<string[]> {
  // Loaded only when something may be pending (see migrationsPending): node-pg-migrate and pg cost ~80 ms of start-up.
  const { runner } = await import("node-pg-migrate");
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: "up",
    migrationsTable: "pgmigrations",
    checkOrder: true,
    // Replicas starting together queue on the lock instead of failing; the later ones then find nothing to do.
    advisoryLockMode: "wait",
    singleTransaction: true,
    logger: {
      debug: (m: string) => log.debug({ msg: m }),
      info: (m: string) => log.debug({ msg: m }),
      warn: (m: string) => log.warn({ msg: m }),
      error: (m: string) => log.error({ msg: m }),
    },
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) log.info({ migrations: names }, "database migrated");
  return names;
}
