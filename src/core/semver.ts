/**
 * Semantic Versioning 2.0.0: validity and precedence, the one place that knows the rules (firmware
 * versions, the fleet query, version counts). Written out rather than taken from the `semver`
 * package so that it matches, rule for rule, the SQL function `tether_semver_cmp` (migration
 * 1732300000024): ListDevices compiles to that function and webhooks and watches evaluate this one,
 * and the two must agree on every version. Strict: no leading `v`, no leading zeros, numbers of any size.
 */

/** The pattern from semver.org (its "suggested regular expression"), anchored. */
export const SEMVER_PATTERN =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

interface Parsed {
  core: [bigint, bigint, bigint];
  pre: string[];
}

function parse(v: string): Parsed | undefined {
  const m = SEMVER_PATTERN.exec(v);
  if (!m) return undefined;
  return { core: [BigInt(m[1]!), BigInt(m[2]!), BigInt(m[3]!)], pre: m[4] ? m[4].split(".") : [] };
}

/** Whether `v` is a semantic version (build metadata allowed). */
export function isSemver(v: string): boolean {
  return SEMVER_PATTERN.test(v);
}

/**
 * -1, 0 or 1 as `a` has lower, equal or higher precedence than `b`; undefined when either is not a
 * semantic version. Build metadata is ignored (`1.0.0+a` equals `1.0.0+b`), a prerelease is lower
 * than its release, numeric identifiers compare as numbers and below alphanumeric ones, which
 * compare in ASCII order, and a longer set of identifiers wins when the shorter is its prefix.
 */
export function compareSemver(a: string, b: string): -1 | 0 | 1 | undefined {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return undefined;
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return x.core[i]! < y.core[i]! ? -1 : 1;
  if (x.pre.length === 0 || y.pre.length === 0) return x.pre.length === y.pre.length ? 0 : x.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const c = compareIdentifier(x.pre[i]!, y.pre[i]!);
    if (c !== 0) return c;
  }
  return x.pre.length === y.pre.length ? 0 : x.pre.length < y.pre.length ? -1 : 1;
}

function compareIdentifier(p: string, q: string): -1 | 0 | 1 {
  const pn = /^\d+$/.test(p);
  const qn = /^\d+$/.test(q);
  if (pn && qn) return BigInt(p) === BigInt(q) ? 0 : BigInt(p) < BigInt(q) ? -1 : 1;
  if (pn !== qn) return pn ? -1 : 1;
  return p === q ? 0 : p < q ? -1 : 1;
}
