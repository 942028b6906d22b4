/**
 * The source guard of a backup run (source-identity.ts says why): every part's source root is
 * checked against its previous generation before any part is built, and every part's walk
 * after all are built, before anything is published. A refusal is exit 2: nothing published,
 * no prune; --accept-source-change turns it into a note for this run.
 */
import { HardsnapError } from '../core/errors.js';
import { check, sys } from '../fs/native.js';
import { manifestPath } from '../spool/layout.js';
import { countTreeAt } from '../fs/entry.js';
import type { RunState } from './part-state.js';
import type { BuiltPart } from './part-run.js';
import {
  DEFAULT_MAX_SOURCE_LOSS,
  movedError,
  nothingLeftError,
  recordedIdentity,
  rootIdentity,
  shrunkError,
  sourceCounts,
  type SourceIdentity,
} from './source-identity.js';
import type { BackupOptions } from './types.js';

export interface RootCheck {
  /** the source root's file system now */
  id: SourceIdentity;
  /** the previous generation and what was recorded for it */
  prevGen: string | null;
  prev: SourceIdentity | undefined;
}

function refuseOrNote(err: HardsnapError | null, o: BackupOptions, onNote: (m: string) => void): void {
  if (!err) return;
  if (!o.acceptSourceChange) throw err;
  onNote(`accepted for this run (--accept-source-change): ${err.message.replace(/: (is it mounted|is it the tree you meant)\?.*$/, '')}`);
}

/** Before the walk: each part's source root on the file system of its previous generation. */
export function checkSourceRoots(o: BackupOptions, state: RunState, onNote: (m: string) => void): Map<string, RootCheck> {
  const out = new Map<string, RootCheck>();
  for (const p of o.parts) {
    const fd = check(sys.openat(sys.AT_FDCWD, p.source, sys.O_RDONLY | sys.O_DIRECTORY, 0), 'open', p.source);
    let id: SourceIdentity;
    try {
      id = rootIdentity(fd);
    } finally {
      sys.close(fd);
    }
    const ps = state.get(p.name)!;
    const prevGen = ps.previous?.name ?? null;
    // what the previous generation's manifest recorded (format 3); a manifest that is missing,
    // damaged or older: the generation's own entries, counted, stand in for the loss check (a
    // deleted manifest must not switch the guard off: an eleventh cron trial); the file system
    // cannot be compared then
    let prev = prevGen ? recordedIdentity(manifestPath(ps.dir, prevGen), { generation: prevGen, part: p.name, host: o.host }) : undefined;
    if (prevGen && !prev) {
      const kept = countGeneration(ps.previous!.path);
      if (kept !== null) {
        prev = { fsType: 0, fsid: null, dev: '', kept };
        onNote(
          `part '${p.name}': ${prevGen} records no source identity (its manifest is missing, damaged or older): its ${kept} entries, counted, stand in for the loss check; the file system cannot be compared`,
        );
      }
    }
    refuseOrNote(movedError(p.name, p.source, prevGen ?? '', prev, id), o, onNote);
    out.set(p.name, { id, prevGen, prev });
  }
  return out;
}

/** After the walk, before publishing: no part lost too much, none is left empty by excludes. */
export function checkBuiltSources(o: BackupOptions, built: BuiltPart[], roots: Map<string, RootCheck>, onNote: (m: string) => void): void {
  for (const b of built) {
    const spec = o.parts.find((p) => p.name === b.part)!;
    const s = b.stats;
    const left = o.dryRun ? 'nothing was written (dry run)' : `${b.part}/${b.generation}.partial stays for the next run to resume`;
    if (!o.allowEmpty) {
      // a refusal the run cannot accept otherwise: --allow-empty says it is meant
      const keptNonDirs = s.files + s.symlinks + s.specials;
      const empty = nothingLeftError(b.part, spec.source, { seen: s.entries, kept: s.dirs + keptNonDirs, keptNonDirs, excluded: s.excluded }, left);
      if (empty) throw empty;
    }
    const r = roots.get(b.part);
    if (!r?.prevGen) continue;
    // --allow-empty and a source now empty: the emptiness is what was accepted
    if (o.allowEmpty && s.entries === 0) continue;
    const maxLoss = o.maxSourceLoss ?? spec.maxSourceLoss ?? DEFAULT_MAX_SOURCE_LOSS;
    refuseOrNote(shrunkError(b.part, spec.source, r.prevGen, r.prev, sourceCounts(s), maxLoss, left), o, onNote);
  }
}

/** The entries of a published generation, counted by a walk; null when it cannot be read. */
function countGeneration(dir: string): number | null {
  const fd = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
  if (fd < 0) return null;
  try {
    const n = countTreeAt(fd);
    return n < 0 ? null : n;
  } finally {
    sys.close(fd);
  }
}
