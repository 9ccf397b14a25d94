import { InvalidArgumentError } from "../../errors.js";
import type { FilterExpr, Op } from "./filter-ast.js";
import { fieldList, resolveRestriction } from "./filter-fields.js";

/** Longest filter accepted, in characters. */
export const FILTER_MAX_LENGTH = 2000;
/** Most restrictions (comparisons) in one filter. */
export const FILTER_MAX_TERMS = 100;
/** Deepest nesting of parentheses and NOT. */
export const FILTER_MAX_DEPTH = 20;

const COMPARATORS: readonly string[] = ["<=", ">=", "!=", "=", "<", ">", ":"];
const FIELD_CHAR = /[A-Za-z0-9_.-]/;

/**
 * Parses the AIP-160 subset Tether filters devices with:
 *
 * ```
 * filter      = [expression]
 * expression  = sequence { "AND" sequence }
 * sequence    = factor { factor }            (juxtaposition is AND)
 * factor      = term { "OR" term }           (OR binds tighter than AND, as in AIP-160)
 * term        = {"NOT" | "-"} simple
 * simple      = "(" expression ")" | field comparator value
 * comparator  = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
 * value       = "quoted string" | 'quoted string' | bare-text
 * ```
 *
 * Every error is INVALID_ARGUMENT on `field`, naming the offending term and its 1-based position,
 * so a typo never silently matches everything.
 */
export function parseFilterExpr(text: string, field = "filter"): FilterExpr {
  if (text.length > FILTER_MAX_LENGTH) throw InvalidArgumentError.field(field, `is longer than ${FILTER_MAX_LENGTH} characters`);
  let pos = 0;
  let terms = 0;
  const fail = (at: number, why: string): never => {
    throw InvalidArgumentError.field(field, `at position ${at + 1}: ${why}`);
  };
  const skip = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const peekWord = (): string => {
    skip();
    let end = pos;
    while (end < text.length && FIELD_CHAR.test(text[end]!)) end++;
    return text.slice(pos, end);
  };
  /** A keyword stands alone: followed by a space, a parenthesis or the end. */
  const atKeyword = (kw: string): boolean => {
    if (peekWord() !== kw) return false;
    const next = text[pos + kw.length];
    return next === undefined || /[\s(]/.test(next);
  };
  const found = () => (pos >= text.length ? "the end of the filter" : `"${text.slice(pos, pos + 20)}"`);

  const expression = (depth: number): FilterExpr => {
    if (depth > FILTER_MAX_DEPTH) fail(pos, `nested more than ${FILTER_MAX_DEPTH} levels deep`);
    const items = [sequence(depth)];
    while (atKeyword("AND")) {
      pos += 3;
      items.push(sequence(depth));
    }
    return items.length === 1 ? items[0]! : { type: "and", items };
  };
  const sequence = (depth: number): FilterExpr => {
    const items = [factor(depth)];
    for (;;) {
      skip();
      if (pos >= text.length || text[pos] === ")" || atKeyword("AND")) break;
      items.push(factor(depth));
    }
    return items.length === 1 ? items[0]! : { type: "and", items };
  };
  const factor = (depth: number): FilterExpr => {
    const items = [term(depth)];
    while (atKeyword("OR")) {
      pos += 2;
      items.push(term(depth));
    }
    return items.length === 1 ? items[0]! : { type: "or", items };
  };
  const term = (depth: number): FilterExpr => {
    skip();
    // `NOT NOT a` is not AIP-160 strictly, but means what it says.
    if (atKeyword("NOT")) {
      pos += 3;
      if (depth >= FILTER_MAX_DEPTH) fail(pos, `nested more than ${FILTER_MAX_DEPTH} levels deep`);
      return { type: "not", item: term(depth + 1) };
    }
    if (text[pos] === "-") {
      pos++;
      if (depth >= FILTER_MAX_DEPTH) fail(pos, `nested more than ${FILTER_MAX_DEPTH} levels deep`);
      return { type: "not", item: term(depth + 1) };
    }
    return simple(depth);
  };
  const simple = (depth: number): FilterExpr => {
    skip();
    if (text[pos] === "(") {
      const open = pos++;
      const inner = expression(depth + 1);
      skip();
      if (text[pos] !== ")") fail(open, `"(" is not closed: expected ")", found ${found()}`);
      pos++;
      return inner;
    }
    return restriction();
  };
  const restriction = (): FilterExpr => {
    const start = pos;
    const name = peekWord();
    if (name === "" || ["AND", "OR", "NOT"].includes(name)) fail(pos, `expected a field name (${fieldList()}), found ${found()}`);
    pos += name.length;
    skip();
    const op = COMPARATORS.find((c) => text.startsWith(c, pos));
    if (op === undefined) return fail(pos, `expected a comparator (=, !=, <, <=, >, >=, :) after "${name}", found ${found()}`);
    pos += op.length;
    skip();
    const value = literal();
    if (++terms > FILTER_MAX_TERMS) fail(start, `more than ${FILTER_MAX_TERMS} comparisons`);
    const source = text.slice(start, pos).trim();
    return resolveRestriction({ field: name, op: op as Op | ":", value }, (why) => fail(start, `cannot use "${source.slice(0, 120)}": ${why}`));
  };
  const literal = (): string => {
    const start = pos;
    const q = text[pos];
    if (q === '"' || q === "'") {
      let out = "";
      for (pos++; pos < text.length && text[pos] !== q; pos++) {
        if (text[pos] === "\\" && pos + 1 < text.length) pos++;
        out += text[pos];
      }
      if (pos >= text.length) fail(start, "the quoted string is not closed");
      pos++;
      return out;
    }
    while (pos < text.length && !/[\s()"']/.test(text[pos]!)) pos++;
    if (pos === start) fail(pos, `expected a value, found ${found()}`);
    return text.slice(start, pos);
  };

  skip();
  if (pos >= text.length) return { type: "true" };
  const expr = expression(0);
  skip();
  if (pos < text.length) fail(pos, `expected AND, OR or the end, found ${found()}`);
  return expr;
}
