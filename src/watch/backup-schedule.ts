/**
 * `--backup-every`: the watcher starts a backup itself, at most once per period, and only after
 * something changed; a burst of changes is waited out (debounced) for `quietMs`, but never
 * beyond one more period.
 */
export interface ScheduleOptions {
  everyMs: number;
  quietMs: number;
  /** runs one backup; resolves with its exit code */
  run(): Promise<number>;
  log(message: string): void;
}

export class BackupSchedule {
  private timer: NodeJS.Timeout | null = null;
  private pending = false;
  private running = false;
  private lastStart = 0;
  private lastChange = 0;
  private firstPending = 0;
  private stopped = false;

  constructor(private readonly o: ScheduleOptions) {}

  /** Something changed in a source. */
  changed(): void {
    this.lastChange = Date.now();
    if (!this.pending) this.firstPending = this.lastChange;
    this.pending = true;
    if (!this.running) this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer || this.stopped) return;
    const now = Date.now();
    const quietAt = Math.min(this.lastChange + this.o.quietMs, this.firstPending + this.o.everyMs);
    const at = Math.max(this.lastStart + this.o.everyMs, quietAt, now);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.fire();
    }, at - now);
  }

  private async fire(): Promise<void> {
    if (this.stopped || this.running || !this.pending) return;
    const now = Date.now();
    // changes still coming in: wait for a quiet moment (bounded by one period)
    if (now < this.lastChange + this.o.quietMs && now < this.firstPending + this.o.everyMs) return this.arm();
    this.pending = false;
    this.running = true;
    this.lastStart = now;
    this.o.log('starting a backup (--backup-every)');
    try {
      const code = await this.o.run();
      this.o.log(`the backup exited with code ${code}${code === 3 ? ' (another run holds the lock): trying again in one period' : ''}`);
      if (code === 3) this.pending = true;
    } catch (err) {
      this.o.log(`the backup could not be started: ${(err as Error).message}`);
    } finally {
      this.running = false;
      if (this.pending) this.arm();
    }
  }
}
