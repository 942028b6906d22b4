/**
 * The merge-join of two name-sorted entry lists (manifest blocks, directory scans: both are
 * sorted by name bytes): each name once, with the entry of each side that has it.
 */
export type Pair<A, B> = readonly [a: A | undefined, b: B | undefined];

export function* byName<A extends { name: Buffer }, B extends { name: Buffer }>(as: readonly A[], bs: readonly B[]): Generator<Pair<A, B>> {
  let i = 0;
  let j = 0;
  while (i < as.length || j < bs.length) {
    const a = as[i];
    const b = bs[j];
    const c = a && b ? Buffer.compare(a.name, b.name) : a ? -1 : 1;
    if (c < 0) {
      i++;
      yield [a, undefined];
    } else if (c > 0) {
      j++;
      yield [undefined, b];
    } else {
      i++;
      j++;
      yield [a, b];
    }
  }
}
