/** Sizes and durations for humans (messages of every layer, the CLI's summaries). */

/** 1536 -> '1.5 KiB' */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) ((n /= 1024), i++);
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

/** 1234 -> '1.23 s', 90000 -> '90 s', 125000 -> '2 min 5 s' */
export function formatMs(ms: number): string {
  return ms < 10_000
    ? `${(ms / 1000).toFixed(2)} s`
    : ms < 120_000
      ? `${(ms / 1000).toFixed(0)} s`
      : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** 1 -> '1 problem', 2 -> '2 problems' (regular plurals only) */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
