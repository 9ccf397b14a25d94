export const MIGRATE_USAGE = `tether migrate    apply pending migrations to DATABASE_URL and exit

  Safe to run while replicas start or serve: node-pg-migrate holds a PostgreSQL advisory lock, so
  concurrent runs apply each migration once. \`tether serve\` also migrates at start; run this from a
  deploy step (Kubernetes init container or Job, systemd ExecStartPre) to fail before serving.`;

/** `tether migrate`: applies pending migrations to DATABASE_URL. */
export async function migrateCommand(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(MIGRATE_USAGE);
    return;
  }
  if (args.length > 0) throw new Error(`unexpected arguments: ${args.join(" ")}\n\n${MIGRATE_USAGE}`);
  // Loaded here, not at the top: `tether --help` shows this usage without loading node-pg-migrate and pino.
  const [{ loadConfig }, { createLogger }, { migrate }] = await Promise.all([import("../config.js"), import("../log.js"), import("../store/migrate.js")]);
  const config = loadConfig();
  if (!config.database.url) throw new Error("DATABASE_URL is not set (the embedded database is migrated by `tether serve` itself)");
  const applied = await migrate(config.database.url, createLogger(config.logLevel));
  console.log(applied.length === 0 ? "database is up to date" : `applied ${applied.length} migration(s): ${applied.join(", ")}`);
}
