/**
 * The watcher's heap (a long-running process whose live data is a few MB, but whose bursts of
 * changes would make V8 keep tens of MB: docs/PERFORMANCE.md#watch-mode).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * The watcher's V8 settings, set at run time (this process runs only the watcher: backups are
 * children, with V8's defaults):
 * - the young generation stays at its start size (growth factor 1): V8 grows it (up to 32 MB)
 *   when a burst of changes allocates fast, and keeps it; the live data is a few MB. More,
 *   smaller scavenges, and a peak RSS that does not jump with a day of changes.
 * - no optimizing compiler (TurboFan, and Maglev where Node.js has it): the interpreter and the
 *   baseline compiler run the watcher's few hot loops. Optimizing them touched ~4 MB more of the
 *   node binary's code pages and held its compilation zones: on a million-file mutate.py day the
 *   peak RSS was 73.1 MB with it and 64.2 MB without, for 2.4 s of CPU against 2.6 s.
 * Flags V8 reads when it decides (to grow, to optimize), so setting them now works; start-up
 * flags such as --max-semi-space-size or --jitless could not be set here
 * (docs/PERFORMANCE.md#watch-mode).
 */
export function watcherHeap(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--no-maglev');
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
