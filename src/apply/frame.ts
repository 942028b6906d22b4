/**
 * A directory of the walk: its place in the part, its three descriptors (source, new
 * generation, previous generation), its entries' manifest records as they settle, and the
 * subdirectories still to enter.
 */
import type { Meta, SourceEntry } from '../fs/entry.js';
import type { BlockEntry, EncodedEntry, ManifestEntry } from '../manifest/format.js';
import type { JobOwner } from './jobs.js';
import type { PrevDir } from './prev-tree.js';
import type { Decision } from '../plan/decide.js';

/** Why a directory's subtree is the previous generation's (the source could not be read). */
export interface Carry {
  /** the generation whose version it is */
  from: string;
  /** errno name */
  code: string;
}

export interface Frame extends JobOwner {
  rel: Buffer;
  /** the source directory, or -1 for a carried subtree (taken from the previous generation) */
  src: number;
  /**
   * the new generation's directory, or -1 in a dry run: what writes into the spool does so only
   * where there is one (a dry run walks, plans and says the plan; it carries none of it out)
   */
  dst: number;
  prev: number;
  meta: Meta;
  /** its scan, when it was read ahead on the pool (a Buffer as sys.scandir gives it, or -errno) */
  scan?: Buffer | number;
  subdirs: Subdir[];
  next: number;
  /** this directory's manifest records, in name order; null entries were dropped */
  out: (BlockEntry | null)[];
  /** unchanged entries waiting for the next link batch */
  links: PendingLink[];
  /** the previous generation's records of this directory (set when it is processed) */
  prevList: PrevDir | null;
  /** all entries of the directory have been handed out */
  sealed: boolean;
  complete: boolean;
  /** set when the subtree is carried from the previous generation */
  carry: Carry | null;
  /** it is a mount point below the source, or below one (mount-points.ts) */
  mounted: boolean;
  done: Promise<void>;
  settle: () => void;
}

export interface Subdir {
  name: Buffer;
  meta: SourceEntry;
  prevIsDir: boolean;
  /** the source could not give it: its subtree is the previous generation's */
  carry: Carry | null;
  /** entering it (mkdir, open new and previous, open and scan the source), started ahead of the walk */
  ready?: Promise<Buffer | number>;
  /** spoolDirAsync's results: mkdir rc, new directory fd, previous directory fd, source fd */
  spool?: Int32Array;
  /** whether the job opens and scans the source directory too */
  scanAhead?: boolean;
  /** whether the job opens the source directory (scanned or not): spool[3] is its descriptor */
  openAhead?: boolean;
  /** when the job that scans it was started (Date.now()): the scan is at most this old */
  scannedAt?: number;
}

/** An unchanged entry to link from the previous generation, and the record it settles. */
export interface PendingLink {
  e: SourceEntry;
  /** index of its record in the frame's out */
  at: number;
  /** its record (the inode number is set once the link is made) */
  rec: EncodedEntry | ManifestEntry;
  /** the inode the previous manifest records for it, to check (0: not checked) */
  prevIno: number;
  /** the decision said (--verbose) once the link is made; null: none to say (a carried entry) */
  d: Decision | null;
}

export function newFrame(rel: Buffer, src: number, dst: number, prev: number, meta: Meta, carry: Carry | null = null): Frame {
  let settle!: () => void;
  const done = new Promise<void>((r) => (settle = r));
  return {
    rel,
    src,
    dst,
    prev,
    meta,
    subdirs: [],
    next: 0,
    out: [],
    links: [],
    prevList: null,
    pending: 0,
    sealed: false,
    complete: false,
    carry,
    mounted: false,
    done,
    settle,
  };
}
