/**
 * `npm run new-product -- <kind>`: writes the skeleton of a new product type (one desired field,
 * `power`; one command, `set_power`, and its result; one metric, `power_w`; a simulator; a console
 * module; a unit test), adds its arms to the shared oneofs and `ProductKind`, registers it in both
 * product registries, and regenerates `gen/` and the device bounds (`npm run generate`).
 *
 * It checks everything before it writes anything, and undoes its writes when a later step fails:
 * a refused or failed run leaves the tree as it was. See README "Add your own product type".
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PRODUCTS } from "../src/core/products/index.js";
import { OPTIONS_FILE, renderAll, TABLE_FILE } from "./device-bounds.js";
import { invalidKind, kindNames, kindPattern, type KindNames } from "./new-product/names.js";
import { addEnumValue, addImport, addOneofArm, declaredNames, importsOf, topLevelTypes } from "./new-product/proto-edits.js";
import { registerConsole, registerCore } from "./new-product/registry-edits.js";
import { consoleCommandsModule } from "./new-product/templates/console-commands.js";
import { consoleModule } from "./new-product/templates/console.js";
import { productModule } from "./new-product/templates/product.js";
import { protoFile } from "./new-product/templates/proto.js";
import { simModule } from "./new-product/templates/sim.js";
import { productTest } from "./new-product/templates/test.js";
import { wordsModule } from "./new-product/templates/words.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const BIN = path.join(ROOT, "node_modules/.bin");

const DEVICE_PROTO = "proto/tether/v1/device.proto";
const COMMAND_PROTO = "proto/tether/v1/command.proto";
const DOWNLINK_PROTO = "proto/tether/device/v1/downlink.proto";
const UPLINK_PROTO = "proto/tether/device/v1/uplink.proto";
const CORE_INDEX = "src/core/products/index.ts";
const CONSOLE_INDEX = "console/src/products/index.ts";
/** Where tests/unit/product-kinds.test.ts looks for kind names (outside products/ folders). */
const CODE_TREES = ["src", "console/src", "bin", "scripts"];

/** A refusal: printed as is, exit code 1, nothing written. */
class Refusal extends Error {}

const read = (rel: string) => readFileSync(path.join(ROOT, rel), "utf8");

/** The files the skeleton consists of, by path. */
function newFiles(n: KindNames): Record<string, string> {
  return {
    [`proto/tether/v1/${n.kind}.proto`]: protoFile(n),
    [`src/core/products/${n.file}.ts`]: productModule(n),
    [`src/core/products/${n.file}-words.ts`]: wordsModule(n),
    [`src/core/products/${n.file}-sim.ts`]: simModule(n),
    [`console/src/products/${n.file}.tsx`]: consoleModule(n),
    [`console/src/products/${n.file}-commands.ts`]: consoleCommandsModule(n),
    [`tests/unit/${n.file}-product.test.ts`]: productTest(n),
  };
}

/** Every reason the kind cannot be added; empty when it can. */
function problems(kind: string): string[] {
  const invalid = invalidKind(kind);
  if (invalid) return [invalid];
  const n = kindNames(kind);
  const existing = PRODUCTS.find((p) => p.kindName === kind || p.case === n.case || p.words.aliases.includes(kind));
  if (existing) return [`the product kind "${kind}" already exists${existing.kindName === kind ? "" : ` (as ${existing.kindName} or its alias)`}`];

  const out: string[] = [];
  for (const [file, message] of [
    [DEVICE_PROTO, "Device"],
    [COMMAND_PROTO, "Command"],
    [COMMAND_PROTO, "CommandResult"],
    [DOWNLINK_PROTO, "DesiredState"],
    [UPLINK_PROTO, "ReportedState"],
  ] as const) {
    if (declaredNames(read(file), message).has(kind)) out.push(`${message} (${file}) already declares "${kind}"`);
  }
  const messages = [n.pascal, `${n.pascal}Desired`, `${n.pascal}Reported`, `${n.pascal}Command`, `${n.pascal}Result`];
  for (const dir of ["proto/tether/v1", "proto/tether/device/v1"]) {
    for (const f of readdirSync(path.join(ROOT, dir)).filter((x) => x.endsWith(".proto"))) {
      for (const t of topLevelTypes(read(`${dir}/${f}`))) if (messages.includes(t)) out.push(`${dir}/${f} already declares ${t}`);
    }
  }
  for (const f of Object.keys(newFiles(n))) if (existsSync(path.join(ROOT, f))) out.push(`${f} already exists`);
  // The no-kind-names test would fail at once if code outside products/ already used these words.
  const pattern = kindPattern(n);
  const named = CODE_TREES.flatMap((t) => codeFiles(path.join(ROOT, t))).flatMap((f) =>
    readFileSync(f, "utf8")
      .split("\n")
      .flatMap((line, i) => (pattern.test(line) ? [`${path.relative(ROOT, f)}:${i + 1}`] : [])),
  );
  if (named.length > 0) {
    out.push(
      `code outside products/ folders already uses the words of "${kind}" (${[...new Set([n.kind, n.case, n.label, n.plural, n.pascal])].join(", ")}), so tests/unit/product-kinds.test.ts would fail: ${named.slice(0, 5).join(", ")}${named.length > 5 ? ", …" : ""}; pick a more specific name`,
    );
  }
  return out;
}

function codeFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "products" || e.name === "node_modules" ? [] : codeFiles(p);
    return /\.(ts|tsx|js|mjs)$/.test(e.name) ? [p] : [];
  });
}

/** One file's content before (undefined: it did not exist) and after. */
interface Change {
  file: string;
  before?: string;
  after: string;
  note: string;
}

/** The shared-file edits: oneof arms, the `ProductKind` value, imports, registry entries. */
function sharedEdits(n: KindNames): Change[] {
  const proto = `tether/v1/${n.kind}.proto`;
  const productProtos = importsOf(read(COMMAND_PROTO));
  const edit = (file: string, steps: Array<(text: string) => { text: string; note: string }>): Change => {
    const before = read(file);
    let text = before;
    const notes: string[] = [];
    for (const step of steps) {
      const r = step(text);
      text = r.text;
      notes.push(r.note);
    }
    return { file, before, after: text, note: notes.join("; ") };
  };
  const arm = (message: string, type: string, comment: string) => (text: string) => {
    const r = addOneofArm(text, { message, oneof: "kind" }, { type, name: n.kind, comment });
    return { text: r.text, note: `${message}.kind ${n.kind} = ${r.number}` };
  };
  const imp = (text: string) => ({ text: addImport(text, proto, productProtos), note: `import ${proto}` });
  const A = n.aLabel.charAt(0).toUpperCase() + n.aLabel.slice(1);
  return [
    edit(DEVICE_PROTO, [
      imp,
      arm("Device", n.pascal, `${A}.`),
      (text) => {
        const r = addEnumValue(text, "ProductKind", { name: `PRODUCT_KIND_${n.upper}`, comment: `Device.${n.kind}.` });
        return { text: r.text, note: `ProductKind PRODUCT_KIND_${n.upper} = ${r.number}` };
      },
    ]),
    edit(COMMAND_PROTO, [
      imp,
      arm("Command", `${n.pascal}Command`, `For a Device with \`${n.kind}\`.`),
      arm("CommandResult", `${n.pascal}Result`, `From ${n.aLabel}.`),
    ]),
    edit(DOWNLINK_PROTO, [imp, arm("DesiredState", `tether.v1.${n.pascal}Desired`, `For ${n.aLabel}.`)]),
    edit(UPLINK_PROTO, [imp, arm("ReportedState", `tether.v1.${n.pascal}Reported`, `From ${n.aLabel}.`)]),
    edit(CORE_INDEX, [(text) => ({ text: registerCore(text, n), note: `${n.case}Product appended to PRODUCTS` })]),
    edit(CONSOLE_INDEX, [(text) => ({ text: registerConsole(text, n), note: `${n.case}Console added to BY_CASE` })]),
  ];
}

function write(c: Pick<Change, "file" | "after">): void {
  const abs = path.join(ROOT, c.file);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, c.after);
}

function undo(changes: Change[]): void {
  for (const c of [...changes].reverse()) {
    if (c.before === undefined) rmSync(path.join(ROOT, c.file), { force: true });
    else writeFileSync(path.join(ROOT, c.file), c.before);
  }
}

/** buf from node_modules; `generate` needs protoc-gen-es from there on the PATH too. */
function buf(...args: string[]): void {
  execFileSync(path.join(BIN, "buf"), args, {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, PATH: `${BIN}${path.delimiter}${process.env.PATH ?? ""}` },
  });
}

/**
 * The project's formatter over the files it created (line breaks depend on the kind name's length,
 * so templates cannot get them right for every name). Skipped when biome is not installed.
 */
function format(files: string[]): void {
  const code = files.filter((f) => /\.(ts|tsx)$/.test(f));
  if (code.length === 0 || !existsSync(path.join(BIN, "biome"))) return;
  execFileSync(path.join(BIN, "biome"), ["format", "--write", ...code], { cwd: ROOT, stdio: "ignore" });
}

/** `npm run generate`: gen/ from the protos, then the device bounds (options file and server table). */
function generate(changes: Change[]): void {
  buf("generate");
  const { options, table, problems: bad } = renderAll();
  if (bad.length > 0) throw new Error(`device contract bounds:\n  ${bad.join("\n  ")}`);
  for (const [file, after] of [
    [OPTIONS_FILE, options],
    [TABLE_FILE, table],
  ] as const) {
    const before = read(file);
    if (before === after) continue;
    changes.push({ file, before, after, note: "regenerated" });
    write({ file, after });
  }
}

function main(args: string[]): void {
  if (args.length !== 1 || args[0]!.startsWith("-")) {
    throw new Refusal("usage: npm run new-product -- <kind>   (kind in snake_case, e.g. foo_bar)");
  }
  const kind = args[0]!;
  const found = problems(kind);
  if (found.length > 0) throw new Refusal(`cannot add product kind "${kind}":\n  ${found.join("\n  ")}\nnothing was changed`);

  const n = kindNames(kind);
  let changes: Change[];
  try {
    changes = [...Object.entries(newFiles(n)).map(([file, after]) => ({ file, after, note: "new" })), ...sharedEdits(n)];
  } catch (e) {
    throw new Refusal(`cannot edit the shared files: ${(e as Error).message}\nnothing was changed`);
  }
  let generated = false;
  try {
    for (const c of changes) write(c);
    format(changes.filter((c) => c.before === undefined).map((c) => c.file));
    buf("lint");
    generated = true;
    generate(changes);
  } catch (e) {
    undo(changes);
    if (generated) buf("generate");
    throw new Error(`${(e as Error).message}\nevery change was undone`);
  }

  const out = process.stdout;
  out.write(`Added product kind "${n.kind}" (${n.label}; oneof case ${n.case}, messages ${n.pascal}*):\n`);
  for (const c of changes) out.write(`  ${c.before === undefined ? "created" : "edited "} ${c.file}${c.note === "new" ? "" : `  (${c.note})`}\n`);
  out.write(`  regenerated gen/ (buf generate)\n`);
  out.write(`
Next steps (README "Add your own product type"):
  1. proto/tether/v1/${n.kind}.proto: the real desired and reported fields and commands, each documented
     (npx buf lint), then npm run generate.
  2. src/core/products/${n.file}.ts (validation, metrics), ${n.file}-words.ts (CLI words),
     ${n.file}-sim.ts (simulated behaviour); console/src/products/${n.file}.tsx and ${n.file}-commands.ts.
  3. npx tsc --noEmit && npx tsc -p console && npx vitest run tests/unit
     (tests/unit/${n.file}-product.test.ts tests the skeleton: extend it with your product).
  4. Try it: npm start, then npm run tether -- simulate --kind ${n.kind}
`);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`new-product: ${(e as Error).message}\n`);
  process.exit(1);
}
