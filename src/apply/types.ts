/** A per-file problem: recorded by path and reported; the run goes on. */
export interface Problem {
  part: string;
  /** path relative to the part root, bytes */
  path: Buffer;
  /** errno name (EACCES, EIO, ...) or ECHANGED */
  code: string;
  message: string;
  /** 'vanished' alone gives exit 24, any 'error' gives exit 23 */
  severity: 'error' | 'vanished';
}

/**
 * What a planned entry became other than what its decision says (for `--verbose`): a copy that
 * turned into a content link to an identical file already in the spool, or into a clone of one
 * (src/apply/clone.ts: a new inode sharing its data), or a further name of a
 * source inode already written in this run (`to`: that first name, relative to the part root).
 */
export type PlanOutcome = { via: 'content' } | { via: 'clone' } | { via: 'hardlink'; to: Buffer };

export interface BuildStats {
  entries: number;
  dirs: number;
  files: number;
  symlinks: number;
  specials: number;
  /** entries hard-linked to the previous generation (or to another name in this one) */
  linked: number;
  /** new inodes written (copies; clones are counted apart) */
  copied: number;
  bytesWritten: number;
  bytesLinked: number;
  /**
   * new inodes made as clones of an identical file already in the spool (FICLONE: the spool's
   * file system shares the data extents, no data block is written): files whose metadata alone
   * changed, or renamed and touched ones (src/apply/clone.ts)
   */
  cloned: number;
  /** the bytes those clones share instead of writing */
  bytesCloned: number;
  /** entries a killed run had already completed, kept on resume */
  reused: number;
  /** links refused with EMLINK, written fresh instead */
  emlinkCopies: number;
  /** unchanged entries whose previous inode was missing, written fresh instead */
  prevMissing: number;
  /** files that kept changing while they were read */
  unstable: number;
  excluded: number;
  /** new or changed files hard-linked to an identical file already in the spool (content dedup) */
  dedupLinked: number;
  /** bytes those links saved writing */
  dedupBytes: number;
  /** content links refused because the bytes differed despite equal size and hash (--dedup-verify) */
  dedupMismatches: number;
  /** files read only to hash them (dedup candidates, --checksum) and their bytes */
  hashedFiles: number;
  hashedBytes: number;
  /** files --checksum found changed although size and mtime were the same */
  checksumChanged: number;
  /**
   * files found changed without --checksum although size and mtime were the same: their ctime
   * (or inode) had moved since their record, so their content was compared (plan/decide.ts
   * movedSinceRecord); copied
   */
  sameStampChanged: number;
  /**
   * unchanged entries whose previous-generation inode no longer showed what its manifest
   * recorded (chmod-ed, replaced in the spool): copied anew from the source instead of linked
   */
  drifted: number;
  /**
   * links refused because the inode is already used by an unrelated name of this generation
   * (separate source files must stay separate inodes): copied instead
   */
  splitLinks: number;
  /**
   * further names of a source inode not on its first name's inode in this generation (the file
   * changed, or its number went to another file, while the run read its names): each holds what
   * it was read with
   */
  linkGroupSplits: number;
  /** entries the source could not give in this run, kept as their previous version (CARRIED) */
  carried: number;
  /** entries whose extended attributes were read after the scan (their ctime said they may have changed) */
  xattrReads: number;
  problems: number;
  vanished: number;
}

/** What a build learned beyond counts: the manifest footer's facts and the run's reports. */
export interface BuildFindings {
  /** the first drifted path (escaped), for the one warning line of the run */
  driftFirst: string | null;
  /**
   * unchanged entries whose previous inode could not be linked, deleted or made immutable in
   * the spool (ENOENT, EPERM, EXDEV): their count and the first (escaped, with its errno), for
   * one warning line; a directory this user may not search (EACCES) is not counted here
   */
  unlinkable: { count: number; first: string | null };
  /** the first further name counted in `linkGroupSplits` and its first name (escaped), for one warning line */
  linkGroupSplit: { name: string; first: string } | null;
  /** attribute namespaces the spool refused (held by the manifest only) */
  xattrsRefused: string[];
  /** carried entries: the first ones, with the generation whose version they are */
  carried: { path: string; from: string; code: string }[];
}
