/**
 * The native jobs of a tree build in flight on libuv's pool, bounded (cpy's `concurrency`):
 * links, copies, a directory's spool side, hashing. A job belongs to the directory (frame) whose
 * entries it settles, so the directory knows when its manifest block can be written; the first
 * fatal error of any job is kept and stops the walk.
 */

/** What a job settles: a directory's count of jobs in flight. */
export interface JobOwner {
  pending: number;
}

export class JobPool {
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly idle: (() => void)[] = [];
  /** the first fatal error of any job; the walk rethrows it */
  fatalError: unknown = null;

  constructor(
    private readonly max: number,
    private readonly settled: (owner: JobOwner) => void,
  ) {}

  get failed(): boolean {
    return this.fatalError !== null;
  }

  throwIfFailed(): void {
    if (this.fatalError) throw this.fatalError;
  }

  fail(err: unknown): void {
    this.fatalError ??= err;
  }

  /** Waits until another job may start. */
  async slot(): Promise<void> {
    while (this.inFlight >= this.max) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Counts a job that belongs to no directory; resolves to its result (a failure reads -EIO). */
  track<T extends Buffer | number>(p: Promise<T> | number): Promise<T | number> {
    if (typeof p === 'number') return Promise.resolve(p);
    this.begin();
    return p
      .then(
        (rc) => rc,
        (err: unknown) => {
          this.fail(err);
          return -5;
        },
      )
      .finally(() => this.end());
  }

  /** Runs a job for `owner`; `then` handles its result on the main thread (unless a job failed). */
  run(owner: JobOwner, p: Promise<number> | number, then: (rc: number) => void): void {
    this.hold(owner);
    const finish = (rc: number) => {
      try {
        if (!this.fatalError) then(rc);
      } catch (err) {
        this.fail(err);
      }
      this.release(owner);
    };
    if (typeof p === 'number') finish(p);
    else
      p.then(finish, (err: unknown) => {
        this.fail(err);
        finish(-5);
      });
  }

  /** Holds a slot and the owner open for work done in steps (a content link: hash, compare, link). */
  hold(owner: JobOwner): void {
    this.begin();
    owner.pending++;
  }

  release(owner: JobOwner): void {
    owner.pending--;
    this.end();
    this.settled(owner);
  }

  /** Resolves when no job is in flight (descriptors may then be closed). */
  async drain(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((r) => this.idle.push(r));
  }

  private begin(): void {
    this.inFlight++;
  }

  private end(): void {
    this.inFlight--;
    this.waiters.shift()?.();
    if (this.inFlight === 0) for (const r of this.idle.splice(0)) r();
  }
}
