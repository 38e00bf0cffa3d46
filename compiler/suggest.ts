/** "Did you mean ...?": the nearest known name to a misspelt one (ops, attributes, inputs, flags). */

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** The closest candidate to a misspelt name, if any is close enough. */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = levenshtein(name.toLowerCase(), c.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3))) return best;
  // A longer or shorter spelling of a name ("inputs" for "in", "soft" for "softmax").
  const n = name.toLowerCase();
  const pre = [...candidates].filter((c) => c.length >= 2 && n.length >= 2 && (n.startsWith(c.toLowerCase()) || c.toLowerCase().startsWith(n)));
  return pre.length === 1 ? pre[0] : undefined;
}
