/**
 * The watcher's memory of what changed: per directory (path relative to the part root, UTF-8),
 * the monotonic time of its last change and, as long as every change in it named an entry,
 * which entries changed and when. A backup rescans a "whole" directory (a change that named no
 * entry, or too many entries) and, in any other changed directory, only the entries named
 * (journal-use.ts, unchanged-dirs.ts): for a generation whose scan began at S, a directory whose
 * last whole mark is at or after S is read whole, any other changed one only for the entries
 * with a change at or after S (every change after the whole mark named its entry). Memory grows with the directories and entries that
 * changed, bounded (MAX_NAMES_PER_DIR, MAX_NAMES: beyond them a directory goes whole), and
 * shrinks when a generation's scan makes older entries useless (prune).
 */
import { displayPath } from '../paths/escape.js';

/** Beyond this many changed entries a directory is rescanned whole (reading it is cheaper). */
export const MAX_NAMES_PER_DIR = 256;
/** Beyond this many changed entries in all, a directory that gets a new one goes whole. */
export const MAX_NAMES = 200_000;
/** Hard links to older files kept by name; beyond, only the time of the newest one dropped. */
export const MAX_LINKS = 1000;

interface DirMark {
  /** last change of anything in the directory */
  t: number;
  /** last change that did not name an entry (0: none since the last prune) */
  whole: number;
  /** escaped entry name -> last change of it, since the last whole mark */
  names: Map<string, number>;
}

export interface JournalMarks {
  dirty: Record<string, number>;
  whole: Record<string, number>;
  names: Record<string, Record<string, number>>;
  /** hard links made to files born before the newest scan: [directory, escaped name, born (s), when (µs)] */
  links?: [string, string, number, number][];
  /** the last such link not kept by name (beyond MAX_LINKS), µs */
  linksLost?: number;
}

/**
 * A name as displayPath() writes it, as one flat string: displayPath builds its result a
 * character at a time, and such a string kept as a Map key costs ~30 bytes per character (a
 * million-file day keeps tens of thousands). Printable ASCII without a backslash is itself.
 */
function nameKey(name: Buffer): string {
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c < 0x20 || c >= 0x7f || c === 0x5c) return flat(displayPath(name));
  }
  return name.toString('latin1');
}

/** A string copied out of its rope (cons string) into one piece. */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

export class DirtyDirs {
  private readonly dirs = new Map<string, DirMark>();
  private nameCount = 0;
  private links: [string, string, number, number][] = [];
  private linksLost = 0;

  get size(): number {
    return this.dirs.size;
  }

  /** Something changed in directory `rel` that no entry name describes (or `rel` itself is new). */
  markWhole(rel: string, t: number): void {
    const d = this.get(rel, t);
    d.whole = t;
    this.nameCount -= d.names.size;
    d.names.clear();
  }

  /** The entry `name` of directory `rel` changed (created, deleted, renamed, written, chmod-ed). */
  markName(rel: string, name: Buffer, t: number): void {
    const d = this.get(rel, t);
    const key = nameKey(name);
    if (!d.names.has(key)) {
      if (d.names.size >= MAX_NAMES_PER_DIR || this.nameCount >= MAX_NAMES) return this.markWhole(rel, t);
      this.nameCount++;
    }
    d.names.set(key, t);
  }

  /**
   * A name `name` made in `rel` at `t` for an inode born at `born` (wall seconds, 1 unknown)
   * before the newest generation's scan: a hard link to a file that scan saw (part-watcher.ts).
   */
  markLink(rel: string, name: Buffer, born: number, t: number): void {
    if (this.links.length >= MAX_LINKS) this.linksLost = t;
    else this.links.push([rel, nameKey(name), born, t]);
  }

  /** Forgets what happened before `before` (the newest generation's scan start). */
  prune(before: number): void {
    this.links = this.links.filter((l) => l[3] >= before);
    if (this.linksLost < before) this.linksLost = 0;
    for (const [rel, d] of this.dirs) {
      if (d.t < before) {
        this.nameCount -= d.names.size;
        this.dirs.delete(rel);
        continue;
      }
      // a whole mark before it concerns no backup that may still use this journal
      if (d.whole < before) d.whole = 0;
      for (const [k, t] of d.names) {
        if (t < before) {
          d.names.delete(k);
          this.nameCount--;
        }
      }
    }
  }

  toJournal(): JournalMarks {
    const out: JournalMarks = { dirty: {}, whole: {}, names: {} };
    for (const [rel, d] of this.dirs) {
      out.dirty[rel] = d.t;
      if (d.whole) out.whole[rel] = d.whole;
      if (d.names.size) out.names[rel] = Object.fromEntries(d.names);
    }
    if (this.links.length) out.links = this.links.map((l) => [...l]);
    if (this.linksLost) out.linksLost = this.linksLost;
    return out;
  }

  /**
   * The same as toJournal(), as JSON members (`"dirty":{...},"whole":{...},"names":{...}`)
   * handed to `write` piece by piece: a large journal is written without building it as objects
   * and one string first (the watcher's memory peak).
   */
  writeJson(write: (s: string) => void): void {
    const q = JSON.stringify;
    let sep = '';
    write('"dirty":{');
    for (const [rel, d] of this.dirs) {
      write(`${sep}${q(rel)}:${d.t}`);
      sep = ',';
    }
    write('},"whole":{');
    sep = '';
    for (const [rel, d] of this.dirs) {
      if (!d.whole) continue;
      write(`${sep}${q(rel)}:${d.whole}`);
      sep = ',';
    }
    write('},"names":{');
    sep = '';
    for (const [rel, d] of this.dirs) {
      if (!d.names.size) continue;
      write(`${sep}${q(rel)}:{`);
      let nsep = '';
      for (const [k, t] of d.names) {
        write(`${nsep}${q(k)}:${t}`);
        nsep = ',';
      }
      write('}');
      sep = ',';
    }
    write('}');
    if (this.links.length) write(`,"links":${q(this.links)}`);
    if (this.linksLost) write(`,"linksLost":${this.linksLost}`);
  }

  private get(rel: string, t: number): DirMark {
    let d = this.dirs.get(rel);
    if (!d) {
      d = { t, whole: 0, names: new Map() };
      this.dirs.set(rel, d);
    }
    d.t = t;
    return d;
  }
}
