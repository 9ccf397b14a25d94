/** `npm run generate` step: writes the nanopb options file and the server's bound table (see device-bounds.ts). */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { OPTIONS_FILE, renderAll, ROOT, TABLE_FILE } from "./device-bounds.js";

const { options, table, problems } = renderAll();
if (problems.length > 0) {
  process.stderr.write(`device contract fields without a usable bound:\n  ${problems.join("\n  ")}\n`);
  process.exit(1);
}
writeFileSync(path.join(ROOT, OPTIONS_FILE), options);
writeFileSync(path.join(ROOT, TABLE_FILE), table);
process.stdout.write(`wrote ${OPTIONS_FILE} and ${TABLE_FILE}\n`);
