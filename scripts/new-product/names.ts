/**
 * The names one product kind goes by, all derived from its snake_case kind name, and the checks a
 * new kind name must pass before anything is written.
 */

// The examples use the placeholder kind `foo_bar`: any real kind named here, in scripts/, would make
// tests/unit/product-kinds.test.ts fail once someone generates it.

/** Every spelling of one kind, e.g. for `foo_bar`. */
export interface KindNames {
  /** `foo_bar`: the proto field name, storage/filter/CLI name, proto file stem. */
  readonly kind: string;
  /** `fooBar`: the oneof case protobuf-es generates (its `localName`). */
  readonly case: string;
  /** `FooBar`: the prefix of the product's proto messages. */
  readonly pascal: string;
  /** `FOO_BAR`: the `ProductKind` value without its `PRODUCT_KIND_` prefix. */
  readonly upper: string;
  /** `foo-bar`: the stem of the TypeScript module files. */
  readonly file: string;
  /** `foo bar`: how people name one. */
  readonly label: string;
  /** `foo bars`. */
  readonly plural: string;
  /** `a foo bar` (`an` before a vowel). */
  readonly aLabel: string;
}

/**
 * Lowercase words joined by single underscores: then protobuf-es's camel case (`foo_bar` → `fooBar`)
 * is simply "capitalise after `_`", and every spelling above is unambiguous. No digits: the C
 * reference device's Makefile (tests/c-device/) finds the product protos with `[a-z_]*`.
 */
export const KIND_PATTERN = /^[a-z]+(_[a-z]+)*$/;
export const KIND_MAX_LENGTH = 32;

/**
 * Names that would break the generated code or the contract: JavaScript keywords and the property
 * names protobuf-es escapes (a oneof case `class` or `constructor` is no usable identifier), protobuf
 * keywords and scalar types, and the words Tether itself uses next to a kind.
 */
const RESERVED = new Set(
  [
    // JavaScript / TypeScript
    "await break case catch class const continue debugger default delete do else enum export extends false finally for",
    "function if implements import in instanceof interface let new null package private protected public return static",
    "super switch this throw true try typeof var void while with yield any unknown never object string number boolean",
    "symbol bigint undefined constructor to_string to_json value_of prototype",
    // protobuf
    "syntax edition option message service rpc returns stream oneof map reserved optional repeated required extend",
    "extensions max weak group double float int32 int64 uint32 uint64 sint32 sint64 fixed32 fixed64 sfixed32 sfixed64",
    "bool bytes",
    // Tether: the oneof and enum a kind lives in, and the file names beside the product modules
    "kind unspecified product products index command_words sim_behaviour command_form",
  ]
    .join(" ")
    .split(" "),
);

/** The reason `kind` cannot be a product kind name, or undefined when it can (existence aside). */
export function invalidKind(kind: string): string | undefined {
  if (!KIND_PATTERN.test(kind)) {
    return `"${kind}" is not a snake_case kind name: lowercase words of letters joined by single "_" (e.g. foo_bar)`;
  }
  if (kind.length > KIND_MAX_LENGTH) return `"${kind}" is longer than ${KIND_MAX_LENGTH} characters`;
  if (RESERVED.has(kind)) return `"${kind}" is a reserved word (JavaScript, protobuf or Tether): pick another name`;
  return undefined;
}

const capitalise = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);

function plural(label: string): string {
  if (/(s|x|z|ch|sh)$/.test(label)) return `${label}es`;
  if (/[^aeiou]y$/.test(label)) return `${label.slice(0, -1)}ies`;
  return `${label}s`;
}

/** All spellings of a valid kind name. */
export function kindNames(kind: string): KindNames {
  const words = kind.split("_");
  const label = words.join(" ");
  return {
    kind,
    case: words[0] + words.slice(1).map(capitalise).join(""),
    pascal: words.map(capitalise).join(""),
    upper: kind.toUpperCase(),
    file: words.join("-"),
    label,
    plural: plural(label),
    aLabel: `${/^[aeiou]/.test(label) ? "an" : "a"} ${label}`,
  };
}

/**
 * The pattern tests/unit/product-kinds.test.ts looks for in code outside products/ folders: a
 * kind's name, case, labels, message names and generated module. Kept in step with that test.
 */
export function kindPattern(n: KindNames): RegExp {
  const words = [n.kind, n.case, n.label, n.plural, n.pascal];
  return new RegExp(`\\b(${words.join("|")})(?![a-z])|${n.pascal}[A-Z_]\\w*|\\b${n.kind}_pb\\b`);
}

/** `foo bar` → `Foo bar`. */
export const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
