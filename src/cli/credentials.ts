import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";

/** One signed-in session, per server address. */
export interface StoredSession {
  user: string;
  accessToken: string;
  /** ISO time. */
  accessExpireTime: string;
  refreshToken: string;
  refreshExpireTime: string;
}

/** `$TETHER_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tether`, else `~/.config/tether`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TETHER_CONFIG_DIR) return path.resolve(env.TETHER_CONFIG_DIR);
  return path.join(env.XDG_CONFIG_HOME ? path.resolve(env.XDG_CONFIG_HOME) : path.join(homedir(), ".config"), "tether");
}

export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), "credentials.json");
}

function readAll(file: string): Record<string, StoredSession> {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, StoredSession>;
  } catch {
    return {};
  }
}

/** The session stored for `address`, if any. */
export function loadSession(address: string, file = credentialsFile()): StoredSession | undefined {
  return readAll(file)[address];
}

/**
 * Stores (or, with undefined, forgets) the session for `address`. The file holds bearer secrets:
 * it is written 0600 in a 0700 folder, through a temp file so a crash never leaves half of it.
 */
export function saveSession(address: string, session: StoredSession | undefined, file = credentialsFile()): void {
  const all = readAll(file);
  if (session) all[address] = session;
  else delete all[address];
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(all, null, 2), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
