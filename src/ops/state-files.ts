import path from "node:path";
import type { Logger } from "pino";
import { PKI_TREE, PRIVATE_TREE, tightenTree } from "./file-modes.js";

/**
 * Runs first at every start: narrows the modes of what an earlier version (or a wide umask, or
 * PGlite) left readable or writable by others, in the data folder and the PKI folder, with one log
 * line saying how many entries were fixed. It creates neither folder (with DATABASE_URL the data
 * folder may never exist, and the working directory may not be writable): whoever creates them
 * does so 0700 (data) or 0755 (PKI). Entries Tether cannot change (not its own, a read-only mount)
 * are named in a warning and left as they are.
 */
export async function secureStateFiles(dirs: { dataDir: string; certsDir: string }, log: Logger): Promise<number> {
  const certsDir = path.resolve(dirs.certsDir);
  const data = await tightenTree(dirs.dataDir, PRIVATE_TREE, [certsDir]);
  const pki = await tightenTree(certsDir, PKI_TREE);
  const tightened = data.tightened + pki.tightened;
  const failed = [...data.failed, ...pki.failed];
  if (tightened > 0) log.info({ tightened, dataDir: dirs.dataDir, certsDir }, "tightened file modes: removed access by other users");
  if (failed.length > 0)
    log.warn(
      { files: failed.slice(0, 20), count: failed.length },
      "cannot tighten the mode of files in the data or certs folder (not owned by Tether's user?)",
    );
  return tightened;
}
