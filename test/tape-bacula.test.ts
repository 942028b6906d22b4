// Bacula run for real over the recipe of docs/TAPE.md (issue 21): a director, a storage daemon
// and a file daemon of this test alone (127.0.0.1, ports 29101-29103, a sqlite3 catalog and a
// File volume under the test's directory), the FileSet and Job taken from the doc's code block,
// the ClientRunBeforeJob/AfterJob scripts of the doc leasing and bind-mounting the generation.
// Checked by Bacula's own report (bconsole: llist, list files, a restore), against the
// generations themselves and `hardsnap diff`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { BIN, REPO_ROOT, backupPart, hardsnap, sleep } from './helpers/run.js';
import { mutate } from './helpers/bench-tree.js';
import { HOST, PART, hardsnapRaw, key, nightlySpool, nulList, recipe, sorted, type Spool } from './helpers/tape.js';
import { readTree } from './helpers/tree.js';
import { isRoot } from './helpers/robust.js';

/** A command's path on PATH, /usr/sbin or /sbin (where Debian puts Bacula's, bconsole too), as scripts/prerequisites.sh looks. */
const which = (cmd: string) =>
  [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => path.join(d || '.', cmd)).find((p) => fs.existsSync(p));
const MAKE_TABLES = '/usr/share/bacula-director/make_sqlite3_tables';
const haveBacula = ['bacula-dir', 'bacula-sd', 'bacula-fd', 'bconsole', 'sqlite3'].every(which) && fs.existsSync(MAKE_TABLES);
const PORTS = { dir: 29101, fd: 29102, sd: 29103 };

/** The FileSet { } and Job { } of docs/TAPE.md's Bacula section, as the doc writes them. */
function documentedConfig(): { fileset: string; job: string } {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'TAPE.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Bacula (and Bareos)'));
  const block = /\n```\n(FileSet \{[\s\S]*?)```\n/.exec(section);
  expect(block, "docs/TAPE.md's Bacula section has a FileSet/Job block").not.toBeNull();
  const fileset = /^FileSet \{\n[\s\S]*?^\}$/m.exec(block![1]!)?.[0];
  const job = /^Job \{\n[\s\S]*?^\}$/m.exec(block![1]!)?.[0];
  expect(`${fileset}\n${job}\n`, 'the block is a FileSet and a Job, nothing else').toBe(block![1]);
  return { fileset: fileset!, job: job! };
}

/** `text` with `from` replaced by `to`, `from` having to occur exactly once (the doc changed: fail). */
function substitute(text: string, from: string, to: string): string {
  expect(text.split(from).length - 1, `the documented configuration holds ${JSON.stringify(from)} once`).toBe(1);
  return text.replace(from, () => to);
}

const lease = (s: Spool) => path.join(s.pdir, '.hardsnap', 'leases');
const leaseFiles = (s: Spool) => (fs.existsSync(lease(s)) ? fs.readdirSync(lease(s)).filter((n) => !n.startsWith('.')) : []);

/** rsync's dry run of GEN/ onto RESTORED/ (hard links, ACLs, xattrs, content, deletions); empty: equal. */
function rsyncRestored(gen: string, restored: string): string[] {
  const r = spawnSync('rsync', ['-aHAXn', '--delete', '--checksum', '--itemize-changes', '--numeric-ids', `${gen}/`, `${restored}/`], {
    encoding: 'latin1',
    maxBuffer: 64 << 20,
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

interface JobReport {
  JobStatus: string;
  Level: string;
  Type: string;
  JobFiles: number;
  JobErrors: number;
}

/** Three Bacula daemons and a console, every file of theirs under `dir`. */
class Bacula {
  readonly work: string;
  readonly log: string;
  readonly conf: { dir: string; sd: string; fd: string; console: string };
  private readonly procs: { name: string; child: ChildProcess; exited: Promise<unknown> }[] = [];
  /** should the worker exit without stop(): no daemon outlives it */
  private readonly killAll = () => {
    for (const { child } of this.procs) if (child.exitCode === null) killGroup(child, 'SIGKILL');
  };

  constructor(
    readonly dir: string,
    jobConfig: string,
  ) {
    this.work = path.join(dir, 'working');
    this.log = path.join(this.work, 'log');
    const volumes = path.join(dir, 'volumes');
    fs.mkdirSync(this.work, { recursive: true });
    fs.mkdirSync(volumes);
    const pw = { dir: 'console-secret', fd: 'fd-secret', sd: 'sd-secret' };
    const q = (p: string) => JSON.stringify(p);
    this.conf = {
      dir: path.join(dir, 'bacula-dir.conf'),
      sd: path.join(dir, 'bacula-sd.conf'),
      fd: path.join(dir, 'bacula-fd.conf'),
      console: path.join(dir, 'bconsole.conf'),
    };
    fs.writeFileSync(
      this.conf.dir,
      `Director {
  Name = hs-dir
  DIRport = ${PORTS.dir}
  DirAddress = 127.0.0.1
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = ${q(this.work)}
  PidDirectory = ${q(this.work)}
  Maximum Concurrent Jobs = 5
  Password = ${q(pw.dir)}
  Messages = Daemon
}
Catalog {
  Name = hs-catalog
  dbname = "bacula"; dbuser = ""; dbpassword = ""
}
Messages {
  Name = Standard
  console = all
  append = ${q(this.log)} = all
  catalog = all, !skipped, !saved
}
Messages {
  Name = Daemon
  console = all
  append = ${q(this.log)} = all
}
Client {
  Name = hs-fd
  Address = 127.0.0.1
  FDPort = ${PORTS.fd}
  Catalog = hs-catalog
  Password = ${q(pw.fd)}
  AutoPrune = no
}
Storage {
  Name = hs-file
  Address = 127.0.0.1
  SDPort = ${PORTS.sd}
  Password = ${q(pw.sd)}
  Device = hs-device
  Media Type = File
}
Pool {
  Name = hs-pool
  Pool Type = Backup
  Label Format = "hs-vol-"
  AutoPrune = no
  Volume Retention = 365 days
}
Schedule {
  Name = hs-never
}
Job {
  Name = hs-restore
  Type = Restore
  Client = hs-fd
  Storage = hs-file
  FileSet = "hardsnap-mail-imap"
  Pool = hs-pool
  Messages = Standard
  Where = ${q(path.join(dir, 'nowhere'))}
}
${jobConfig}
`,
    );
    fs.writeFileSync(
      this.conf.sd,
      `Storage {
  Name = hs-sd
  SDPort = ${PORTS.sd}
  SDAddress = 127.0.0.1
  WorkingDirectory = ${q(this.work)}
  Pid Directory = ${q(this.work)}
}
Director {
  Name = hs-dir
  Password = ${q(pw.sd)}
}
Device {
  Name = hs-device
  Media Type = File
  Archive Device = ${q(volumes)}
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
}
Messages {
  Name = Standard
  director = hs-dir = all
}
`,
    );
    fs.writeFileSync(
      this.conf.fd,
      `Director {
  Name = hs-dir
  Password = ${q(pw.fd)}
}
FileDaemon {
  Name = hs-fd
  FDport = ${PORTS.fd}
  FDAddress = 127.0.0.1
  WorkingDirectory = ${q(this.work)}
  Pid Directory = ${q(this.work)}
}
Messages {
  Name = Standard
  director = hs-dir = all, !skipped, !restored
}
`,
    );
    fs.writeFileSync(this.conf.console, `Director {\n  Name = hs-dir\n  DIRport = ${PORTS.dir}\n  address = 127.0.0.1\n  Password = ${q(pw.dir)}\n}\n`);
    // the catalog: Debian's schema script, run on a database in the working directory
    const script = fs.readFileSync(MAKE_TABLES, 'utf8');
    const make = substitute(substitute(script, 'cd /var/lib/bacula', `cd ${q(this.work)}`), 'db_name=XXX_DBNAME_XXX', 'db_name=bacula');
    const r = spawnSync('sh', ['-c', make], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(this.work, 'bacula.db'))).toBe(true);
  }

  /** `bacula-dir -t` and friends: the configuration as Bacula reads it. */
  check(): void {
    for (const [bin, conf] of [
      ['bacula-dir', this.conf.dir],
      ['bacula-sd', this.conf.sd],
      ['bacula-fd', this.conf.fd],
      ['bconsole', this.conf.console],
    ] as const) {
      const r = spawnSync(which(bin)!, ['-t', '-c', conf], { encoding: 'utf8' });
      expect(r.status, `${bin} -t: ${r.stdout}${r.stderr}`).toBe(0);
    }
  }

  /** The three daemons in the foreground (-f), each in its own process group, until stop(). */
  async start(): Promise<void> {
    for (const port of Object.values(PORTS)) expect(listening(port), `port ${port} is free (no Bacula left from another run)`).toBe(false);
    process.once('exit', this.killAll);
    for (const [name, conf, port] of [
      ['bacula-sd', this.conf.sd, PORTS.sd],
      ['bacula-fd', this.conf.fd, PORTS.fd],
      ['bacula-dir', this.conf.dir, PORTS.dir],
    ] as const) {
      const out = fs.openSync(path.join(this.work, `${name}.out`), 'a');
      const child = spawn(which(name)!, ['-f', '-c', conf], { stdio: ['ignore', out, out], detached: true });
      fs.closeSync(out);
      const exited = new Promise((r) => child.on('exit', r));
      this.procs.push({ name, child, exited });
      const deadline = Date.now() + 15_000;
      while (!listening(port)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start: ${this.output(name)}`);
        await sleep(50);
      }
    }
  }

  output(name: string): string {
    const f = path.join(this.work, `${name}.out`);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  }

  /** SIGTERM each daemon's process group, SIGKILL after 10 s; resolves when all have exited. */
  async stop(): Promise<void> {
    process.off('exit', this.killAll);
    await Promise.all(
      this.procs.map(async ({ child, exited }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        killGroup(child, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** bconsole with these commands on its stdin; its output as latin1 (one char, one byte). */
  console(...commands: string[]): string {
    const r = spawnSync(which('bconsole')!, ['-n', '-c', this.conf.console], {
      input: commands.join('\n') + '\n',
      encoding: 'latin1',
      timeout: 60_000,
      maxBuffer: 64 << 20,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1000 OK: \d+ hs-dir Version: 9\./);
    return r.stdout;
  }

  /** `run ... yes` then `wait`: the new JobId. */
  run(command: string): number {
    const out = this.console(`${command} yes`, 'wait');
    const m = /Job queued\. JobId=(\d+)/.exec(out);
    expect(m, out).not.toBeNull();
    return Number(m![1]);
  }

  /** `llist jobid=N`: the catalog's record of the job. */
  job(jobid: number): JobReport {
    const out = this.console(`llist jobid=${jobid}`);
    const field = (f: string) => new RegExp(`^ *${f}: (.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
    return {
      JobStatus: field('JobStatus'),
      Level: field('Level'),
      Type: field('Type'),
      JobFiles: Number(field('JobFiles')),
      JobErrors: Number(field('JobErrors')),
    };
  }

  /**
   * `list files [type=deleted] jobid=N`: its table's rows, each a path below `root` as a latin1
   * key (root '.', no trailing '/' on directories). Bacula prints names raw (a newline in a name
   * continues the row on the next line) and pads a row with spaces after the name: no name of
   * these trees ends with a space.
   */
  files(jobid: number, root: string, type = ''): string[] {
    const out = this.console(`list files ${type && `type=${type} `}jobid=${jobid}`);
    const table = /\n(\+-+\+)\n\| Filename +\|\n\1\n([\s\S]*?)\1\n/.exec(out);
    if (!table) {
      expect(out, 'no table: no files').not.toMatch(/\| Filename/);
      return [];
    }
    const prefix = `${Buffer.from(root).toString('latin1')}/`;
    return table[2]!
      .slice(2, -3)
      .split(' |\n| ')
      .map((row) => {
        const p = row.replace(/ +$/, '');
        expect(p.startsWith(prefix), p).toBe(true);
        return p.slice(prefix.length).replace(/\/$/, '') || '.';
      });
  }
}

/**
 * Whether a socket listens on 127.0.0.1:port, read from /proc/net/tcp (a probe connection would
 * be logged by the daemon as a Security Alert).
 */
function listening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1] === local && f[3] === '0A'; // TCP_LISTEN
    });
}

/** A signal to a child's process group (it and what it started: the RunScripts of bacula-fd). */
function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, sig);
  } catch {
    // gone already
  }
}

/** A recipe of docs/TAPE.md as an executable file, its variables set in it (the environment runRecipe gives). */
function recipeFile(file: string, name: string, env: Record<string, string>): string {
  const vars = { PATH: `${path.dirname(BIN)}:${process.env.PATH}`, ...env };
  const exports = Object.entries(vars)
    .map(([k, v]) => `export ${k}='${v}'`)
    .join('\n');
  fs.writeFileSync(file, `#!/bin/sh\n${exports}\n${recipe(name)}`, { mode: 0o755 });
  return file;
}

/** The paths of a generation (latin1 keys, root '.'): all of them, or its directories. */
const paths = (gen: string, only?: 'dir') =>
  readTree(gen)
    .filter((e) => !only || e.type === only)
    .map((e) => key(e.relPath));

describe('Bacula, run for real with the configuration of docs/TAPE.md', () => {
  test.skipIf(!isRoot || !haveBacula)(
    'a Full job of the leased generation, then an Accurate Incremental: Bacula saves exactly the generation, then exactly what changed (diff) and records the deletions; its restore equals the generation (needs root and Bacula)',
    async ({ tmp }) => {
      const s = nightlySpool(tmp, 300);
      // an ACL and an extended attribute, kept by hardsnap, for Bacula to keep too
      const acl = path.join(s.src, 'users', 'u0000', 'Maildir');
      expect(spawnSync('setfacl', ['-m', 'u:65534:rx', acl]).status).toBe(0);
      expect(spawnSync('setfattr', ['-n', 'user.hardsnap-test', '-v', 'kept', path.join(s.src, 'odd', 'with space')]).status).toBe(0);
      await s.next();
      const n1 = await s.next();

      const dir = path.join(tmp, 'bacula');
      fs.mkdirSync(dir);
      const env = { HS_OPTS: s.hsOpts, PART, STATE: path.join(tmp, 'state'), MOUNT: path.join(tmp, 'mnt', 'hardsnap-tape') };
      const { fileset, job } = documentedConfig();
      let conf = substitute(fileset, 'File = /mnt/hardsnap-tape', `File = ${JSON.stringify(env.MOUNT)}`) + '\n';
      conf += substitute(
        substitute(
          substitute(job, '"/usr/local/sbin/hardsnap-tape-begin"', JSON.stringify(recipeFile(path.join(dir, 'hardsnap-tape-begin'), 'bacula-begin', env))),
          '"/usr/local/sbin/hardsnap-tape-end"',
          JSON.stringify(recipeFile(path.join(dir, 'hardsnap-tape-end'), 'bacula-end', env)),
        ),
        '  # Client, Storage, Pool, Schedule, Messages: as for your other jobs',
        '  Client = hs-fd\n  Storage = hs-file\n  Pool = hs-pool\n  Schedule = hs-never\n  Messages = Standard',
      );
      const bacula = new Bacula(dir, conf);
      bacula.check();
      const JOB = 'hardsnap-mail-imap-to-tape';
      const jobLog = () => (fs.existsSync(bacula.log) ? fs.readFileSync(bacula.log, 'utf8') : '(no log)');
      /** After a job: the scripts left no mount and no lease; the lease they took is released. */
      const released = () => {
        expect(spawnSync('mountpoint', ['-q', env.MOUNT]).status, 'unmounted after the job').not.toBe(0);
        expect(leaseFiles(s), 'no lease left').toEqual([]);
        const [id, part, gen] = fs.readFileSync(path.join(env.STATE, 'bacula.lease'), 'utf8').trimEnd().split('\t');
        expect(id).toMatch(/^[0-9a-f]{16}$/);
        expect(part).toBe(PART);
        const again = hardsnap(['release', ...s.hsOpts.split(' '), id!]);
        expect(again.code, 'the lease the job took was released already').toBe(2);
        expect(again.stderr).toMatch(/released already/);
        return gen;
      };
      try {
        await bacula.start();

        // night 1: a Full job of the generation `last` names, read through the bind mount
        const full = bacula.run(`run job=${JOB} level=Full`);
        const fr = bacula.job(full);
        expect(fr, jobLog()).toEqual({ JobStatus: 'T', Level: 'F', Type: 'B', JobFiles: paths(n1.path).length, JobErrors: 0 });
        expect(sorted(bacula.files(full, env.MOUNT)), 'list files: every path of the generation, directories and hard links included').toEqual(
          sorted(paths(n1.path)),
        );
        expect(released(), 'the generation leased').toBe(n1.path);

        // night 2: real changes, a backup, an Accurate Incremental of the new `last`
        mutate(s.src, 202, { change: 5, add: 3, delete: 3, rename: 3 });
        fs.renameSync(path.join(s.src, 'users', 'u0001'), path.join(s.src, 'users', 'u0001-moved')); // a directory moved
        fs.chmodSync(path.join(s.src, 'odd', '-leading-dash'), 0o600); // metadata only
        fs.rmSync(path.join(s.src, 'odd', 'link-rel'));
        fs.symlinkSync('tab\tname', path.join(s.src, 'odd', 'link-rel')); // a symlink retargeted
        fs.rmSync(path.join(s.src, 'odd', '..dots..'));
        fs.mkdirSync(path.join(s.src, 'odd', '..dots..')); // a file becomes a directory
        fs.writeFileSync(path.join(s.src, 'odd', '..dots..', 'inner'), 'inner');
        fs.rmdirSync(path.join(s.src, 'odd', 'empty dir'));
        fs.writeFileSync(path.join(s.src, 'odd', 'empty dir'), 'now a file'); // and a directory a file
        const b = backupPart({ spool: s.spool, host: HOST, part: PART, src: s.src }, '2026-03-03T03:15:00Z');
        expect(b.code, b.stderr).toBe(0);
        const n2 = path.join(s.pdir, '2026-03-03T031500Z');
        const diff = (which: string) => {
          const r = hardsnapRaw(['diff', ...s.hsOpts.split(' '), '--part', PART, n1.name, '2026-03-03T031500Z', '--null', which]);
          expect(r.status, r.stderr.toString()).toBe(0);
          return nulList(r.stdout);
        };
        // what the restore must keep besides content: the ACL and the xattr, in the generation
        expect(spawnSync('getfacl', ['-pn', path.join(n2, 'users', 'u0000', 'Maildir')], { encoding: 'utf8' }).stdout).toContain('user:65534:r-x');
        expect(spawnSync('getfattr', ['-n', 'user.hardsnap-test', path.join(n2, 'odd', 'with space')], { encoding: 'utf8' }).stdout).toContain('"kept"');
        const changed = diff('--changed');
        const deleted = diff('--deleted');
        const dirs2 = new Set(paths(n2, 'dir'));
        expect(changed.filter((k) => !dirs2.has(k)).length, 'files changed, added or moved').toBeGreaterThan(20);
        expect(deleted.length).toBeGreaterThan(20);

        const incr = bacula.run(`run job=${JOB} level=Incremental accurate=yes`);
        const saved = bacula.files(incr, env.MOUNT);
        const gone = bacula.files(incr, env.MOUNT, 'deleted');
        // every directory of a generation is a new inode (accurate = i): Bacula saves each one
        // again (its attributes, no data); of the rest, exactly what diff lists as changed
        expect(sorted(saved), 'saved: every directory, and exactly the changed non-directories of diff').toEqual(
          sorted(new Set([...dirs2, ...changed.filter((k) => !dirs2.has(k))])),
        );
        expect(sorted(gone), 'recorded as deleted: diff --deleted').toEqual(sorted(deleted));
        // JobFiles of an Accurate Incremental: what it saved and the deletions it recorded
        expect(bacula.job(incr), jobLog()).toEqual({ JobStatus: 'T', Level: 'I', Type: 'B', JobFiles: saved.length + gone.length, JobErrors: 0 });
        expect(released(), 'the new generation leased').toBe(n2);
        const log = jobLog();
        expect(
          log.match(/ hs-fd JobId \d+: shell command: run ClientBeforeJob "\S+hardsnap-tape-begin"\n/g),
          'the begin script ran on the client, each job',
        ).toHaveLength(2);
        expect(
          log.match(/ hs-fd JobId \d+: shell command: run ClientAfterJob "\S+hardsnap-tape-end"\n/g),
          'the end script ran on the client, each job',
        ).toHaveLength(2);
        expect(log).toMatch(/Backup Level: +Incremental, since=[\s\S]*Accurate: +yes/);

        // a restore of the latest state (Full + Incremental) equals night 2's generation
        const where = path.join(tmp, 'restored');
        const restore = bacula.run(`restore client=hs-fd fileset=hardsnap-mail-imap where=${where} select current all done`);
        const rr = bacula.job(restore);
        expect(rr, jobLog()).toMatchObject({ JobStatus: 'T', Type: 'R', JobFiles: paths(n2).length, JobErrors: 0 });
        expect(jobLog(), 'no warning, error or alert in the log of the three jobs').not.toMatch(/Warning|Error:|ERR=|Security Alert|Fatal/);
        expect(rsyncRestored(n2, path.join(where, env.MOUNT)), 'rsync -aHAXn --delete --checksum: the restore is the generation').toEqual([]);
      } finally {
        await bacula.stop();
        if (spawnSync('mountpoint', ['-q', env.MOUNT]).status === 0) spawnSync('umount', [env.MOUNT]);
      }
    },
    120_000,
  );
});
