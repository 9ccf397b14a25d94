import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { ensurePrivateDir, writePrivateFile, writePublicFile } from "../ops/file-modes.js";
import { FileError } from "./cli-error.js";
import { certsDirOf } from "./client.js";

/**
 * Where the CLI puts the certificates and keys it writes for devices (and claim certificates):
 * a folder of the PKI folder, so walkthroughs leave no private key in the working tree.
 */
export const DEVICE_CREDENTIALS_FOLDER = "devices";

/** A path as people read it: relative to the working directory when it is below it. */
export function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

/**
 * The output prefix: `--out` as given (its folder must exist), else `<certs>/devices/<name>`
 * with that folder created 0700 (it holds private keys).
 */
export async function credentialsPrefix(out: string | undefined, certsDir: string | undefined, name: string): Promise<string> {
  if (out !== undefined) return out;
  const dir = path.join(certsDirOf({ certsDir }), DEVICE_CREDENTIALS_FOLDER);
  try {
    await ensurePrivateDir(dir);
  } catch (err) {
    throw new FileError("cannot create the device credentials folder", shown(dir), err);
  }
  return shown(path.join(dir, name));
}

const FORCE_HINT = " (pass --force to replace it)";

/**
 * Refuses, before anything is asked of the server, to replace files: a key Tether returns is
 * returned once, so finding out afterwards that it cannot be written would lose it.
 */
export async function refuseOverwrite(files: Array<{ file: string; what: string }>, force: boolean | undefined): Promise<void> {
  if (force) return;
  for (const { file, what } of files) {
    const exists = await access(file).then(
      () => true,
      () => false,
    );
    if (exists) throw new FileError(`will not overwrite the ${what}`, file, Object.assign(new Error(), { code: "EEXIST" }), FORCE_HINT);
  }
}

/** Writes a certificate (0644) or a private key (0600); without `force` an existing file is never replaced. */
export async function writeCredential(file: string, data: string, kind: "certificate" | "private key", force: boolean | undefined): Promise<void> {
  const flag = force ? "w" : "wx";
  try {
    await (kind === "private key" ? writePrivateFile(file, data, flag) : writePublicFile(file, data, flag));
  } catch (err) {
    throw new FileError(`cannot write the ${kind}`, file, err, (err as NodeJS.ErrnoException).code === "EEXIST" ? FORCE_HINT : "");
  }
}

/** Reads an input file (a CSR), failing with one `error:` line. */
export async function readInputFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new FileError(`cannot read the ${what}`, file, err);
  }
}
