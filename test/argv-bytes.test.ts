// Paths are bytes on the command line too (issue 16). Node decodes process.argv as UTF-8 and
// replaces each invalid byte with U+FFFD: `--spool $'/srv/spool\xe9'` wrote a spool at
// `/srv/spool\xef\xbf\xbd` with exit 0, and a source `$'/srv/src\xe9'` was reported missing.
// Each test passes real bytes (test/helpers/run-bytes.ts) in one path argument and checks that
// hardsnap used exactly those bytes, showed them escaped, and accepts the escaped form back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { calendar, makeSpoolAt } from './helpers/spool.js';
import { b, hardsnapBytes, runBytes, type ByteArg } from './helpers/run-bytes.js';
import { makeTree } from './helpers/tree.js';
import { displayPath } from '../src/paths/escape.js';

const { at } = calendar('2026-04');
const E9 = Buffer.from([0xe9]);
const FF = Buffer.from([0xff]);
const MANGLED = Buffer.from([0xef, 0xbf, 0xbd]);

/** Every name below `root` (bytes), relative. */
function allNames(root: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const walk = (dir: Buffer, rel: Buffer | null) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const r = rel ? b(rel, '/', e.name) : e.name;
      out.push(r);
      if (e.isDirectory()) walk(b(dir, '/', e.name), r);
    }
  };
  walk(root, null);
  return out;
}

/** No name anywhere below root holds U+FFFD's bytes: nothing was written at a mangled path. */
function expectNothingMangled(root: string): void {
  const bad = allNames(Buffer.from(root)).filter((n) => n.includes(MANGLED));
  expect(bad.map((n) => displayPath(n))).toEqual([]);
}

/** rsync's dry run (the oracle) and links.py, on byte paths. */
function expectSameTree(src: Buffer, copy: Buffer): void {
  const r = runBytes('/usr/bin/rsync', [
    '-aHAXn',
    '--checksum',
    '--itemize-changes',
    '--numeric-ids',
    '--modify-window=-1',
    '--delete',
    b(src, '/'),
    b(copy, '/'),
  ]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe('');
  const l = runBytes('/usr/bin/python3', ['/work/shared/check/links.py', src, copy]);
  expect(l.code, l.stdout + l.stderr).toBe(0);
}

/** A source whose own path and names are not UTF-8. */
function byteSource(tmp: string): Buffer {
  const src = b(tmp, '/src', E9);
  makeTree(src, [
    [b('caf', E9, '.txt'), 'latin-1 name\n'],
    [b('d', FF, '/inner', E9), 'deep\n'],
    [b('d', FF, '/same'), { hardlink: b('caf', E9, '.txt') }],
    ['plain.txt', 'plain\n'],
    [b('skip', E9, '.tmp'), 'excluded by a byte pattern\n'],
    [b('also', FF, '.log'), 'excluded by a pattern file\n'],
  ]);
  return src;
}

describe('path arguments are bytes', () => {
  test('THREAT issue 16: --spool and --part NAME=PATH with bytes that are not UTF-8 land exactly there (not at \\xef\\xbf\\xbd), and the generation passes the rsync oracle', ({
    tmp,
  }) => {
    const src = byteSource(tmp);
    const spool = b(tmp, '/spool', E9);
    makeSpoolAt(spool);
    const part = b('caf', E9);
    const r = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b(part, '=', src)], at(1));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectNothingMangled(tmp);
    const partDir = b(spool, '/rsync/h/', part);
    expect(fs.readlinkSync(b(partDir, '/last')).toString()).toBe('2026-04-01T030000Z');
    const gen = b(partDir, '/2026-04-01T030000Z');
    // the spool's files pass the oracle against the source (excluded nothing this time)
    expectSameTree(src, gen);
    // list, list --json, status show the escaped form of the spool path and the part name
    const shownPart = 'caf\\xe9';
    const list = hardsnapBytes(['list', '--spool', spool, '--host', 'h']);
    expect(list.code).toBe(0);
    expect(list.stdout).toBe(`${shownPart}  2026-04-01T030000Z\n`);
    const json = JSON.parse(hardsnapBytes(['list', '--spool', spool, '--host', 'h', '--json']).stdout) as { part: string; path: string }[];
    expect(json).toMatchObject([{ part: shownPart, path: displayPath(gen), complete: true }]);
    expect(json[0]!.path).toBe(`${tmp}/spool\\xe9/rsync/h/caf\\xe9/2026-04-01T030000Z`);
    const status = hardsnapBytes(['status', '--spool', spool, '--host', 'h'], at(1));
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`h/${shownPart}: OK`);
    const statusJson = JSON.parse(hardsnapBytes(['status', '--spool', spool, '--host', 'h', '--json'], at(1)).stdout);
    expect(JSON.stringify(statusJson)).toContain(`"part":"${shownPart.replace('\\', '\\\\')}"`);
    // the run log records the command line escaped, never U+FFFD
    const runs = fs.readFileSync(b(spool, '/rsync/h/.hardsnap/runs.jsonl'), 'utf8');
    expect(runs).not.toContain('\ufffd');
    expect(JSON.parse(runs.trim()).command).toBe(`hardsnap backup --spool ${tmp}/spool\\xe9 --host h --part caf\\xe9=${tmp}/src\\xe9`);
    // a second run links the unchanged files
    const second = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b(part, '=', src)], at(2));
    expect(second.code, second.stderr).toBe(0);
    const a = fs.statSync(b(gen, '/plain.txt'));
    const c = fs.statSync(b(partDir, '/2026-04-02T030000Z/plain.txt'));
    expect(c.ino).toBe(a.ino);
  });

  test('a source whose path is not UTF-8 and does not exist is reported by its escaped path, exit 2, nothing written', ({ tmp }) => {
    const spool = path.join(tmp, 'spool');
    makeSpoolAt(spool);
    const r = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('p=', tmp, '/gone', E9)], at(1));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`source of part 'p' is missing: ${tmp}/gone\\xe9 (ENOENT)`);
    expect(fs.existsSync(path.join(spool, 'rsync/h/p'))).toBe(false);
  });

  test('restore: --part in the escaped form or as raw bytes, --to and --path with bytes that are not UTF-8', ({ tmp }) => {
    const src = byteSource(tmp);
    const spool = path.join(tmp, 'spool');
    makeSpoolAt(spool);
    expect(hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('caf', E9, '=', src)], at(1)).code).toBe(0);
    // the whole part, named as list shows it, into a new directory whose name is not UTF-8
    const to = b(tmp, '/back', FF, '/deeper');
    const whole = hardsnapBytes(['restore', '--spool', spool, '--host', 'h', '--part', 'caf\\xe9', '--to', to]);
    expect(whole.stderr).toBe('');
    expect(whole.code).toBe(0);
    expectSameTree(src, to);
    expectNothingMangled(tmp);
    // one path, named by raw bytes, and the same path in the escaped form; the part as raw bytes
    for (const [i, sub] of [
      [1, b('d', FF, '/inner', E9)],
      [2, 'd\\xff/inner\\xe9'],
    ] as [number, ByteArg][]) {
      const one = b(tmp, '/one', String(i), E9);
      const r = hardsnapBytes(['restore', '--spool', spool, '--host', 'h', '--part', b('caf', E9), '--path', sub, '--to', one]);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(b(one, '/d', FF, '/inner', E9), 'utf8')).toBe('deep\n');
    }
    // --all puts the part in DIR/<its real bytes>
    const all = b(tmp, '/all', E9);
    expect(hardsnapBytes(['restore', '--spool', spool, '--host', 'h', '--all', '--to', all]).code).toBe(0);
    expectSameTree(src, b(all, '/caf', E9));
    // --dry-run creates nothing
    const dry = hardsnapBytes(['restore', '--spool', spool, '--host', 'h', '--part', 'caf\\xe9', '--to', b(tmp, '/dry', E9), '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('caf\\xe9.txt');
    expect(fs.existsSync(b(tmp, '/dry', E9))).toBe(false);
    // a target inside the spool, spelled with bytes, is refused and nothing is created
    const inside = hardsnapBytes(['restore', '--spool', spool, '--host', 'h', '--part', 'caf\\xe9', '--to', b(spool, '/x', E9)]);
    expect(inside.code).toBe(1);
    expect(inside.stderr).toContain(`the target ${spool}/x\\xe9 lies inside the spool`);
    expect(fs.existsSync(b(spool, '/x', E9))).toBe(false);
  });

  test('prune of a part whose name is not UTF-8 removes what the rules do not keep (an eleventh cron trial: ETRASH, "another file system", for ever)', ({
    tmp,
  }) => {
    const src = byteSource(tmp);
    const spool = path.join(tmp, 'spool');
    makeSpoolAt(spool);
    for (const n of [1, 2, 3]) {
      fs.appendFileSync(b(src, '/caf', E9, '.txt'), `${n}\n`);
      const r = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('caf', E9, '=', src)], at(n));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
    }
    const p = hardsnapBytes(['prune', '--spool', spool, '--host', 'h', '--part', 'caf\\xe9', '--keep-last', '1']);
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    expect(fs.readdirSync(b(spool, '/rsync/h/caf', E9)).filter((n) => n.startsWith('2026'))).toEqual(['2026-04-03T030000Z']);
    expect(hardsnapBytes(['status', '--spool', spool, '--host', 'h', '--max-age', '0s']).code).toBe(0);
  });

  test('--exclude and --exclude-from with bytes that are not UTF-8 (in the pattern and in the file name)', ({ tmp }) => {
    const src = byteSource(tmp);
    const spool = path.join(tmp, 'spool');
    makeSpoolAt(spool);
    const patterns = b(tmp, '/ex', FF, '.txt');
    fs.writeFileSync(patterns, b('# bytes in a pattern file\n*', FF, '.log\n'));
    const r = hardsnapBytes(
      ['backup', '--spool', spool, '--host', 'h', '--part', b('p=', src), '--exclude', b('skip', E9, '.*'), '--exclude-from', patterns],
      at(1),
    );
    expect(r.code, r.stderr).toBe(0);
    const names = allNames(Buffer.from(path.join(spool, 'rsync/h/p/last/')))
      .map((n) => displayPath(n))
      .sort();
    expect(names).toEqual(['caf\\xe9.txt', 'd\\xff', 'd\\xff/inner\\xe9', 'd\\xff/same', 'plain.txt']);
    // a pattern file that does not exist is named escaped
    const missing = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('p=', src), '--exclude-from', b(tmp, '/no', E9)], at(2));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`exclude file ${tmp}/no\\xe9 does not exist`);
  });

  test('--config FILE with bytes that are not UTF-8 is read by its bytes; a config whose text is not UTF-8 is refused with the position', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a\n' });
    const spool = path.join(tmp, 'spool');
    makeSpoolAt(spool);
    const config = b(tmp, '/hardsnap', E9, '.yaml');
    fs.writeFileSync(config, `spool: ${spool}\nhost: h\nparts:\n  docs: ${src}\n`);
    const r = hardsnapBytes(['--config', config, 'backup'], at(1));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(spool, 'rsync/h/docs/last'))).toBe(true);
    const missing = hardsnapBytes(['backup', '--config', b(tmp, '/none', FF)], at(2));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${tmp}/none\\xff: cannot read config file (ENOENT)`);
    // a spool path written in the file with a raw byte would become U+FFFD: refused instead
    const latin1 = b(tmp, '/latin1.yaml');
    fs.writeFileSync(latin1, b(`host: h\nspool: ${tmp}/sp`, E9, '\n'));
    const bad = hardsnapBytes(['backup', '--config', latin1], at(2));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`latin1.yaml:2:${`spool: ${tmp}/sp`.length + 1}: the byte 0xe9 is not UTF-8`);
    expectNothingMangled(tmp);
  });

  test('a hook command with bytes that are not UTF-8 runs exactly; HARDSNAP_SPOOL and HARDSNAP_PARTS carry the real bytes', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a\n' });
    const spool = b(tmp, '/spool', E9);
    makeSpoolAt(spool);
    const marker = b(tmp, '/ran', FF);
    const pre = b("touch '", marker, "'");
    const post = b('printf %s "$HARDSNAP_SPOOL" > ', tmp, '/spool.txt; printf %s "$HARDSNAP_PARTS" > ', tmp, '/parts.txt');
    const r = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('caf', E9, '=', src), '--pre-hook', pre, '--post-hook', post], at(1));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(marker)).toBe(true);
    expect(fs.readFileSync(path.join(tmp, 'spool.txt'))).toEqual(spool);
    expect(fs.readFileSync(path.join(tmp, 'parts.txt'))).toEqual(b('caf', E9));
    // the run log shows the hook command escaped
    const rec = JSON.parse(fs.readFileSync(b(spool, '/rsync/h/.hardsnap/runs.jsonl'), 'utf8').trim());
    expect(rec.hooks.pre.command).toBe(`touch '${tmp}/ran\\xff'`);
    expectNothingMangled(tmp);
  });

  test('two paths that differ only in bytes that are not UTF-8 are two paths (a source is not "inside the spool" because both would mangle alike)', ({
    tmp,
  }) => {
    const src = b(tmp, '/s', E9, '/src');
    makeTree(src, { 'a.txt': 'a\n' });
    const spool = b(tmp, '/s', Buffer.from([0xe8]));
    makeSpoolAt(spool);
    const r = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('p=', src)], at(1));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // and a source really inside the spool, spelled with bytes, is refused
    const inner = b(spool, '/inner');
    makeTree(inner, { 'b.txt': 'b\n' });
    const bad = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('q=', inner)], at(2));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`lies inside the spool ${tmp}/s\\xe8`);
  });

  test('a spool whose path is not UTF-8 and does not exist: nothing is created anywhere, the error shows the escaped path', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a\n' });
    const spool = b(tmp, '/nospool', E9);
    const list = hardsnapBytes(['list', '--spool', spool, '--host', 'h']);
    expect(list.code).toBe(2); // a missing spool: an unmounted file system
    expect(list.stderr).toContain(`spool ${tmp}/nospool\\xe9 does not exist`);
    const backup = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`], { ...at(1), timeoutMs: 20_000 });
    expect(backup.code).toBe(2);
    expect(backup.stderr).toContain(`${tmp}/nospool\\xe9`);
    expect(
      allNames(Buffer.from(tmp))
        .map((n) => displayPath(n))
        .sort(),
    ).toEqual(['src', 'src/a.txt']);
    // check probes the nearest existing ancestor, by bytes
    const check = hardsnapBytes(['check', '--spool', b(spool, '/sub'), '--json']);
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ spool: `${tmp}/nospool\\xe9/sub`, probed: tmp, ok: true });
  });
});

describe('hostile path arguments (found by an attack on the promises above)', () => {
  test('a newline with a byte that is not UTF-8 (spool, source, part name), --opt=-VALUE with a leading dash, a relative path: exact, and shown on one line', ({
    tmp,
  }) => {
    const spool = b(tmp, '/sp\nool', E9);
    makeSpoolAt(spool);
    const src = b(tmp, '/src\n', FF);
    makeTree(src, [
      [b('a', E9), 'x'],
      ['-dash', 'y'],
      ['sub\n/f', 'z'],
    ]);
    const r = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('n', E9, FF, '=', src)], at(1));
    expect(r.code, r.stderr).toBe(0);
    expectSameTree(src, b(spool, '/rsync/h/n', E9, FF, '/last'));
    const list = hardsnapBytes(['list', '--spool', spool, '--host', 'h', '--json']);
    expect(JSON.parse(list.stdout)[0].path).toBe(`${tmp}/sp\\x0aool\\xe9/rsync/h/n\\xe9\\xff/2026-04-01T030000Z`);
    // relative paths whose first byte is a dash, given as --opt=VALUE
    makeSpoolAt(b(tmp, '/-sp', E9));
    const rel = { ...at(2), cwd: tmp };
    expect(hardsnapBytes(['backup', b('--spool=-sp', E9), '--host', 'h', b('--part=-p', E9, '=', src)], rel).code).toBe(0);
    const back = hardsnapBytes(['restore', b('--spool=-sp', E9), '--host', 'h', '--part', '-p\\xe9', b('--to=-out', E9)], rel);
    expect(back.code, back.stderr).toBe(0);
    expectSameTree(src, b(tmp, '/-out', E9));
    // a failing run names the path escaped, on one line
    const bad = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('p=', tmp, '/gone\n', E9)], at(3));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      `hardsnap: error: source of part 'p' is missing: ${tmp}/gone\\x0a\\xe9 (ENOENT) (is its file system mounted? nothing was written)\n`,
    );
    expectNothingMangled(tmp);
  });

  test('255-byte names that are not UTF-8 work; a 256-byte one fails with ENAMETOOLONG, shown as the name given (not a stand-in)', ({ tmp }) => {
    const src = byteSource(tmp);
    const spool = b(tmp, '/', Buffer.alloc(255, 0xe9));
    makeSpoolAt(spool);
    expect(hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('p=', src)], at(1)).code).toBe(0);
    const to = b(tmp, '/t/', Buffer.alloc(255, 0xff));
    const ok = hardsnapBytes(['restore', '--spool', spool, '--host', 'h', '--part', 'p', '--to', to]);
    expect(ok.code, ok.stderr).toBe(0);
    expectSameTree(src, to);
    const long = Buffer.alloc(256, 0xfe);
    const tooLong = hardsnapBytes(['restore', '--spool', spool, '--host', 'h', '--part', 'p', '--to', b(tmp, '/t/', long)]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain(`cannot create the target ${tmp}/t/${'\\xfe'.repeat(256)}: ENAMETOOLONG`);
    const missing = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('q=', tmp, '/', long)], at(2));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${tmp}/${'\\xfe'.repeat(256)} (ENAMETOOLONG)`);
    expect(missing.stderr).not.toContain('___');
  });

  test('--metrics-file and check on paths that are not UTF-8: the file lands exactly there; check probes the real mount', ({ tmp }) => {
    const src = byteSource(tmp);
    const spool = b(tmp, '/sp', E9);
    makeSpoolAt(spool);
    const metrics = b(tmp, '/m', E9, '.prom');
    const r = hardsnapBytes(['backup', '--spool', spool, '--host', 'h', '--part', b('caf', E9, '=', src), '--metrics-file', metrics], at(1));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(metrics, 'utf8')).toContain('part="caf\\\\xe9"');
    const check = hardsnapBytes(['check', '--spool', spool, '--json']);
    const report = JSON.parse(check.stdout);
    expect(report.spool).toBe(`${tmp}/sp\\xe9`);
    expect(report.mount.mountPoint).not.toBe('/proc');
    expectNothingMangled(tmp);
  });
});

describe('arg text and the command line (unit)', async () => {
  const { argText, bytesOfArg, hasRawBytes, isUtf8, unescapeArg, showArg } = await import('../src/paths/arg-text.js');
  const { byteArgv, splitCmdline } = await import('../src/cli/argv.js');
  const { registerAlias, pathBytes, showPaths } = await import('../src/paths/aliases.js');

  test("argText is lossless for any bytes, and is exactly Node's string for valid UTF-8", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    for (let n = 0; n < 3000; n++) {
      const len = rnd() % 12;
      const buf = Buffer.from(Array.from({ length: len }, () => (rnd() % 3 === 0 ? 0x80 + (rnd() % 0x80) : rnd() % 0x100)));
      const t = argText(buf);
      expect(bytesOfArg(t).equals(buf)).toBe(true);
      const valid = Buffer.from(buf.toString('utf8'), 'utf8').equals(buf);
      expect(isUtf8(buf)).toBe(valid);
      expect(hasRawBytes(t)).toBe(!valid);
      if (valid) expect(t).toBe(buf.toString('utf8'));
    }
    // astral characters (surrogate pairs) next to raw bytes
    const mixed = b('\u{1F600}', E9, '\u{1F600}', FF);
    expect(bytesOfArg(argText(mixed))).toEqual(mixed);
    // a character whose low surrogate lies in U+DC80..U+DCFF (U+10080) is a character, not a raw byte
    expect(hasRawBytes('\u{10080}x\u{100FF}')).toBe(false);
    expect(showArg('\u{10080}')).toBe('\u{10080}');
    expect(hasRawBytes(argText(b('\u{10080}', E9)))).toBe(true);
    expect(showArg(argText(b('\u{10080}', E9)))).toBe('\u{10080}\\xe9');
    expect(showArg(argText(b('caf', E9, '\\')))).toBe('caf\\xe9\\\\');
  });

  test('unescapeArg reads \\xHH and \\\\ among raw bytes; a stray backslash is an error', () => {
    expect(unescapeArg(argText(b('a\\xe9', FF, '\\\\b')))).toEqual(b('a', E9, FF, '\\b'));
    expect(() => unescapeArg('a\\q')).toThrow(/bad escape/);
  });

  test('byteArgv takes the user arguments from the tail of /proc/self/cmdline, only when they match process.argv', () => {
    const cmd = b('node\0--single-threaded-gc\0/x/bin/hardsnap\0list\0--spool\0/s', E9, '\0\0');
    const argv = ['/usr/bin/node', '/x/bin/hardsnap', 'list', '--spool', '/s\ufffd', ''];
    const r = byteArgv(argv, cmd);
    expect(r.source).toBe('cmdline');
    expect(r.argv.slice(2).map((a) => bytesOfArg(a))).toEqual([Buffer.from('list'), Buffer.from('--spool'), b('/s', E9), Buffer.alloc(0)]);
    // a mismatch (another count, another string): process.argv as it is
    expect(byteArgv(['/n', '/x', 'list', 'other'], cmd).source).toBe('argv');
    expect(byteArgv(argv, b('node\0list\0')).source).toBe('argv');
    expect(splitCmdline(b('a\0\0b'))).toEqual([Buffer.from('a'), Buffer.alloc(0), Buffer.from('b')]);
    // the real one: this process's own arguments
    expect(byteArgv().argv).toEqual(process.argv);
  });

  test('a part name is held in the escaped form: \\xHH only for bytes that are not UTF-8, never a backslash or a control character', async () => {
    const { validatePartName } = await import('../src/spool/part-name.js');
    expect(validatePartName('caf\\xe9/d\\xff')).toBe('caf\\xe9/d\\xff');
    expect(() => validatePartName('caf\\x41')).toThrow(/write it as "cafA"/);
    expect(() => validatePartName('a\\\\b')).toThrow(/backslashes are not allowed/);
    expect(() => validatePartName('a\\x0ab')).toThrow(/control characters/);
    expect(() => validatePartName('a\\c')).toThrow(/only allowed in/);
    expect(() => validatePartName('x/\\xe9\\xe9' + 'a'.repeat(199))).toThrow(/too long/);
  });

  test('showPaths turns a registered alias (and what follows it) and raw bytes into the escaped form', () => {
    const alias = registerAlias('999999', b('/srv/sp', E9));
    expect(showPaths(`spool ${alias}/rsync/h: error`)).toBe('spool /srv/sp\\xe9/rsync/h: error');
    expect(pathBytes(`${alias}/rsync`)).toEqual(b('/srv/sp', E9, '/rsync'));
    expect(showPaths('/proc/self/fd/1234567/x')).toBe('/proc/self/fd/1234567/x'); // not ours
    expect(showPaths(`x ${argText(b('a', FF))}`)).toBe('x a\\xff');
    expect(showPaths('U+10080 is \u{10080}')).toBe('U+10080 is \u{10080}');
  });
});
