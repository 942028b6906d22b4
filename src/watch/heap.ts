/**
 * The watcher's heap (a long-running process whose live data is a few MB, but whose bursts of
 * changes would make V8 keep tens of MB: docs/PERFORMANCE.md#watch-mode).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * A long-running watcher's heap: V8 grows the young generation (up to 32 MB) when a burst of
 * changes allocates fast, and keeps it; its live data is a few MB. Growth factor 1 keeps the
 * young generation at its start size: more, smaller scavenges, and a peak RSS that does not
 * jump with a day of changes on a million files (docs/PERFORMANCE.md#watch-mode). Read by V8
 * whenever it would grow the young generation, so it can be set now (a start-up flag such as
 * --max-semi-space-size cannot); this process runs only the watcher (backups are children).
 */
export function smallYoungGeneration(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}

let collect: (() => void) | null | undefined;

/**
 * After a burst (called once per batch of records): a full collection when the heap grew by
 * more than 8 MB since the last one. The objects of a burst outlive the small young generation
 * and pile up in the old one until V8 decides to collect it. (gc() is exposed at run time for
 * this process only.) Measured alone it changed little (73 MB either way at a million files:
 * the heap was then mostly live, the names' ropes); it is part of what the recorded 71.5 MB
 * was measured with.
 */
export function collectAfterBurst(): void {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  if (!collect) return;
  const used = v8.getHeapStatistics().used_heap_size;
  if (used > lastUsed + 8 * 1048576) {
    collect();
    lastUsed = v8.getHeapStatistics().used_heap_size;
  } else if (used < lastUsed) lastUsed = used;
}

let lastUsed = 0;
