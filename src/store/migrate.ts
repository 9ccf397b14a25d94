import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import type { ClientConfig } from "pg";
import type { Logger } from "pino";

/** The migrations folder shipped with the package (SQL files, shared by PGlite and PostgreSQL). */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));

/**
 * Applies every pending migration. node-pg-migrate takes a PostgreSQL advisory lock, so several
 * replicas starting at once apply each migration exactly once.
 */
export async function migrate(databaseUrl: string | ClientConfig, log: Logger): Promise<string[]> {
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
