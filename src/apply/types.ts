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
 * turned into a content link to an identical file already in the spool, or a further name of a
 * source inode already written in this run (`to`: that first name, relative to the part root).
 */
export type PlanOutcome = { via: 'content' } | { via: 'hardlink'; to: Buffer };

export interface BuildStats {
  entries: number;
  dirs: number;
  files: number;
  symlinks: number;
  specials: number;
  /** entries hard-linked to the previous generation (or to another name in this one) */
  linked: number;
  /** new inodes written */
  copied: number;
  bytesWritten: number;
  bytesLinked: number;
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
  problems: number;
  vanished: number;
}
