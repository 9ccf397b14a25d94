/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1, so `lst`→`list` and `lsit`→`list` are both 1.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate a mistyped word most likely meant: one it starts (`del` → `delete`, `prov` →
 * `provisioning`) counts as one edit away; otherwise the closest within 2 edits, never one that
 * shares nothing with it (`x` suggests nothing). Case is ignored; undefined when nothing is close.
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  const word = input.toLowerCase();
  if (word === "") return undefined;
  let best: { candidate: string; score: number } | undefined;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase();
    const distance = editDistance(word, c);
    const score = word.length >= 2 && c.startsWith(word) ? Math.min(distance, 1) : distance;
    if (score > 2 || score >= Math.max(word.length, c.length)) continue;
    if (!best || score < best.score) best = { candidate, score };
  }
  return best?.candidate;
}
