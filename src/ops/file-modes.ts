/**
 * File modes of what Tether keeps on disk. Private data (the database, the signing-key secret,
 * private keys) is readable by Tether's OS user only, whatever the umask; public PKI files (CA and
 * service certificates, the CRL) stay readable (0644), because brokers running as another user
 * read `ca.crt` and `crl.pem` in place, but never writable by anyone else.
 */
import { chmod, lstat, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";

/** Modes that a tree may keep at most: anything beyond is removed, nothing is ever added. */
export interface ModePolicy {
  dir: number;
  file: (name: string) => number;
}

/** Everything for Tether's user only: the data directory (PGlite, `signing-key.secret`, the database socket). */
export const PRIVATE_TREE: ModePolicy = { dir: 0o700, file: () => 0o600 };

/** The PKI folder: private keys 0600; certificates, the CRL and the folder itself readable by others. */
export const PKI_TREE: ModePolicy = { dir: 0o755, file: (name) => (name.endsWith(".key") ? 0o600 : 0o644) };

export interface TightenResult {
  /** Files and folders whose mode was narrowed. */
  tightened: number;
  /** Entries that could not be changed (not ours, read-only mount): left as they were. */
  failed: string[];
}

/**
 * Removes every permission bit beyond `policy` below `root` (and on `root`). Symbolic links are
 * never followed: a planted link must not make Tether chmod a file elsewhere. `skip` lists folders
 * with their own policy (a certs folder inside the data folder). A missing `root` is no error.
 */
export async function tightenTree(root: string, policy: ModePolicy, skip: string[] = []): Promise<TightenResult> {
  const result: TightenResult = { tightened: 0, failed: [] };
  const skipped = new Set(skip.map((p) => path.resolve(p)));
  const visit = async (p: string, isRoot: boolean) => {
    if (!isRoot && skipped.has(p)) return;
    // The root may be a link (a data folder moved to another disk); everything under it is lstat'ed.
    const st = await (isRoot ? stat(p) : lstat(p)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined; // gone meanwhile (PGlite's temporary files)
      throw err;
    });
    if (!st || st.isSymbolicLink()) return;
    const max = st.isDirectory() ? policy.dir : policy.file(path.basename(p));
    const mode = st.mode & 0o7777;
    if ((mode & ~max) !== 0) {
      try {
        await chmod(p, mode & max);
        result.tightened++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") result.failed.push(p);
      }
    }
    if (st.isDirectory()) {
      const entries = await readdir(p).catch(() => [] as string[]);
      for (const name of entries) await visit(path.join(p, name), false);
    }
  };
  await visit(path.resolve(root), true);
  return result;
}

/** Creates `dir` (and missing parents) 0700 and narrows it to 0700 if it already existed. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if ((st.mode & 0o077) !== 0) await chmod(dir, st.mode & 0o700);
}

/** Writes a secret (a key, a token store) as 0600, also when the file already existed with a wider mode. */
export async function writePrivateFile(file: string, data: string | Uint8Array, flag = "w"): Promise<void> {
  await writeFile(file, data, { mode: 0o600, flag });
  await chmod(file, 0o600); // `mode` only applies when the file is created
}

/** Writes a public file (a certificate, a CRL) as 0644: anyone may read it, only Tether may change it. */
export async function writePublicFile(file: string, data: string | Uint8Array, flag = "w"): Promise<void> {
  await writeFile(file, data, { mode: 0o644, flag });
  await chmod(file, 0o644);
}
