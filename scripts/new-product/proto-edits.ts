/**
 * Text edits of the shared proto files: a new arm in a oneof, a new enum value, a new import. Each
 * finds its place by parsing the block it extends (never by a kind name), takes the next free number
 * and keeps the comment buf lint and readers expect. An edit that cannot find its place throws.
 */

/** A top-level `message`/`enum` block, or a `oneof` inside one: line indexes of its opening and closing lines. */
interface Block {
  open: number;
  close: number;
}

/** Braces outside comments and strings, so `devices/{device}` in a comment does not count. */
function braceDelta(line: string): number {
  const code = line.replace(/\/\/.*$/, "").replace(/"(?:[^"\\]|\\.)*"/g, "");
  return (code.match(/\{/g)?.length ?? 0) - (code.match(/\}/g)?.length ?? 0);
}

function findBlock(lines: string[], opening: RegExp, from = 0, to = lines.length): Block | undefined {
  for (let i = from; i < to; i++) {
    if (!opening.test(lines[i]!)) continue;
    let depth = 0;
    for (let j = i; j < to; j++) {
      depth += braceDelta(lines[j]!);
      if (depth === 0) return { open: i, close: j };
    }
    return undefined;
  }
  return undefined;
}

/** Field numbers used or reserved anywhere in a message (oneof arms share the message's numbers). */
function usedNumbers(body: string[]): Set<number> {
  const used = new Set<number>();
  for (const raw of body) {
    const line = raw.replace(/\/\/.*$/, "");
    const field = /=\s*(\d+)\s*[;[]/.exec(line);
    if (field) used.add(Number(field[1]));
    const reserved = /^\s*reserved\s+([^;]+);/.exec(line);
    if (!reserved || reserved[1]!.includes('"')) continue;
    for (const part of reserved[1]!.split(",")) {
      const [lo, hi] = part.trim().split(/\s+to\s+/);
      const end = hi === "max" ? Number(lo) : Number(hi ?? lo);
      for (let n = Number(lo); n <= end; n++) used.add(n);
    }
  }
  return used;
}

/** The names a message already declares: fields, oneofs, nested types. */
export function declaredNames(proto: string, message: string): Set<string> {
  const lines = proto.split("\n");
  const msg = findBlock(lines, new RegExp(`^message ${message} \\{`));
  if (!msg) throw new Error(`message ${message} not found`);
  const names = new Set<string>();
  for (const raw of lines.slice(msg.open + 1, msg.close)) {
    const line = raw.replace(/\/\/.*$/, "");
    const field = /(\w+)\s*=\s*\d+\s*[;[]/.exec(line);
    if (field) names.add(field[1]!);
    const decl = /^\s*(?:oneof|message|enum)\s+(\w+)/.exec(line);
    if (decl) names.add(decl[1]!);
  }
  return names;
}

/**
 * Adds `<type> <name> = N;` with its comment at the end of `oneof <oneof>` in top-level `message
 * <message>`; N is one past the oneof's highest number, skipping numbers the message uses or reserves.
 */
export function addOneofArm(
  proto: string,
  at: { message: string; oneof: string },
  arm: { type: string; name: string; comment: string },
): { text: string; number: number } {
  const lines = proto.split("\n");
  const msg = findBlock(lines, new RegExp(`^message ${at.message} \\{`));
  if (!msg) throw new Error(`message ${at.message} not found`);
  const oneof = findBlock(lines, new RegExp(`^\\s+oneof ${at.oneof} \\{`), msg.open + 1, msg.close);
  if (!oneof) throw new Error(`oneof ${at.message}.${at.oneof} not found`);
  const armLines = lines.slice(oneof.open + 1, oneof.close);
  const armNumbers = [...usedNumbers(armLines)];
  if (armNumbers.length === 0) throw new Error(`oneof ${at.message}.${at.oneof} has no arm to follow`);
  const used = usedNumbers(lines.slice(msg.open + 1, msg.close));
  let number = Math.max(...armNumbers) + 1;
  while (used.has(number)) number++;
  const indent = /^\s*/.exec(armLines.findLast((l) => l.trim() !== "")!)![0];
  lines.splice(oneof.close, 0, `${indent}// ${arm.comment}`, `${indent}${arm.type} ${arm.name} = ${number};`);
  return { text: lines.join("\n"), number };
}

/** Adds `<name> = N;` with its comment at the end of top-level `enum <enumName>`; N is one past the highest. */
export function addEnumValue(proto: string, enumName: string, value: { name: string; comment: string }): { text: string; number: number } {
  const lines = proto.split("\n");
  const block = findBlock(lines, new RegExp(`^enum ${enumName} \\{`));
  if (!block) throw new Error(`enum ${enumName} not found`);
  const body = lines.slice(block.open + 1, block.close);
  const numbers = body
    .map((l) => /^\s*\w+\s*=\s*(\d+)\s*[;[]/.exec(l.replace(/\/\/.*$/, ""))?.[1])
    .filter((n) => n !== undefined)
    .map(Number);
  const number = Math.max(...numbers, ...usedNumbers(body)) + 1;
  const indent = /^\s*/.exec(body.findLast((l) => l.trim() !== "")!)![0];
  lines.splice(block.close, 0, `${indent}// ${value.comment}`, `${indent}${value.name} = ${number};`);
  return { text: lines.join("\n"), number };
}

/** The `tether/v1/*.proto` files a proto imports (for command.proto: the product protos). */
export function importsOf(proto: string): string[] {
  return [...proto.matchAll(/^import "(tether\/v1\/[a-z0-9_]+\.proto)";$/gm)].map((m) => m[1]!);
}

/**
 * Adds `import "<path>";` among the imports of the product protos, in alphabetical order (after the
 * last one when it sorts last), so the import block stays as tidy as it was.
 */
export function addImport(proto: string, path: string, productProtos: readonly string[]): string {
  const lines = proto.split("\n");
  const products = lines.map((l, i) => ({ i, p: /^import "([^"]+)";$/.exec(l)?.[1] })).filter((x) => x.p !== undefined && productProtos.includes(x.p));
  if (products.length === 0) throw new Error("no product import to place the new one beside");
  const after = products.find((x) => x.p! > path);
  lines.splice(after ? after.i : products.at(-1)!.i + 1, 0, `import "${path}";`);
  return lines.join("\n");
}

/** `message`/`enum` names declared at the top level of a proto file. */
export function topLevelTypes(proto: string): string[] {
  return [...proto.matchAll(/^(?:message|enum|service)\s+(\w+)/gm)].map((m) => m[1]!);
}
