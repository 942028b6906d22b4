// The benches' graveyard, DIR/graveyard: what a timed run wrote is renamed aside into it, not
// deleted, until a section is done. On ext4 without a journal (this development machine's
// disk), inodes freed less than a minute before (five while their table block is dirty) are
// skipped one by one when new ones are allocated (fs/ext4/ialloc.c, recently_deleted()), so a
// run made right after deleting the last one paid for every mkdir and create, which no nightly
// run does. empty() deletes it and notes when; settle() waits until that is 65 s old (also
// across bench runs: the time is kept in DIR/graveyard-emptied-at).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SETTLE_MS = 65_000;

export function graveyard(dir) {
  const root = path.join(dir, 'graveyard');
  const stamp = path.join(dir, 'graveyard-emptied-at');
  let n = 0;
  return {
    /** a new path in the graveyard (nothing is made there) */
    aside() {
      fs.mkdirSync(root, { recursive: true });
      while (fs.existsSync(path.join(root, String(++n))));
      return path.join(root, String(n));
    },
    empty() {
      if (!fs.existsSync(root)) return;
      fs.rmSync(root, { recursive: true, force: true });
      spawnSync('sync');
      fs.writeFileSync(stamp, String(Date.now()));
    },
    /** waits out the minute after the last empty(); says so when it waits */
    settle(say = console.log) {
      const since = fs.existsSync(stamp) ? Date.now() - Number(fs.readFileSync(stamp, 'utf8')) : Infinity;
      if (since >= SETTLE_MS) return;
      say(`  waiting ${((SETTLE_MS - since) / 1000).toFixed(0)} s: inodes freed by emptying the graveyard are still "recently deleted"`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SETTLE_MS - since);
    },
  };
}
