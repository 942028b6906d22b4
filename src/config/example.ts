/**
 * The example config `hardsnap init` prints: a BlueMind mail server backing up to an NFS spool,
 * with every key present (or shown commented out when its default is what most people want)
 * and explained. It is tested to parse into the values it claims, so it cannot rot.
 */
const EXAMPLE = `# hardsnap configuration (YAML; JSON works too). Use it with: hardsnap --config FILE ...
# Command-line options override what is set here. Durations are <number><unit> sequences,
# units s m h d w y (m is minutes), largest first: 90s, 20h, 1d12h.

# Where generations are kept: <spool>/rsync/<host>/<part>/<generation>. Absolute path; often an
# NFS mount (mount it with noatime,nodiratime). Make it once, mounted, with
# 'hardsnap init --spool DIR': a backup never creates it, and refuses one that is not mounted.
spool: /var/backups/bluemind/dp_spool

# This host's directory in the spool. Default: the primary IPv4 address, as BlueMind does.
# host: 192.168.124.72

# The trees to back up: part name -> absolute path, or -> { path, exclude }. A name may contain
# "/" but no part may lie inside another (bm and bm/pgsql cannot both exist).
parts:
  mail/imap:
    path: /var/spool/cyrus/data
    # Patterns excluded from this part only, on top of the global ones below.
    exclude:
      - "cyrus.squat"
  mail/archive: /var/spool/bm-hsm
  filehosting/data: /var/spool/bm-filehosting
  # Filled by the pre hook below just before the copy, so files and database match.
  bm/pgsql: /var/backups/bluemind/pgsql-dump

# Patterns excluded from every part.
exclude:
  - "lost+found"
  - "*.tmp"

# Files of more patterns, one a line, applied to every part. Absolute paths.
exclude-from: []

# Stay on each part's file system: do not descend into other mounts below it. Default: false.
one-file-system: true

# Which generations "hardsnap prune" keeps (counts are whole numbers >= 0). A generation kept
# by any rule stays. Default: keep everything.
retention:
  keep-daily: 7       # the newest generation of each of the last 7 days
  keep-weekly: 4      # ... of each of the last 4 ISO weeks
  keep-monthly: 3     # ... of each of the last 3 months
  # keep-last: 2      # the newest N generations, whatever their age
  # keep-hourly: 24   # the newest generation of each of the last N hours
  # keep-yearly: 1    # the newest generation of each of the last N years
  # keep-within: 2d   # every generation younger than this

# Commands run around a backup, as an argv list without a shell, or { shell: "..." } when you
# need pipes or redirections. A failing pre hook aborts the run (exit 2, nothing published);
# the post hook runs after every run that got the lock, published or failed (not one stopped
# by a signal), with HARDSNAP_STATUS=ok|partial|failed (see docs/OPERATIONS.md).
hooks:
  # Dump PostgreSQL into the bm/pgsql part's directory before anything is copied.
  pre: ["/usr/local/sbin/dump-pgsql", "/var/backups/bluemind/pgsql-dump"]
  # Tell the tape backup (here Bacula) that the newest generation, under "last", is ready.
  # After a failed run "last" still names the previous complete generation.
  post: { shell: "echo 'run job=bluemind-last yes' | /usr/sbin/bconsole" }
  # The longest a hook may run before it is killed and counted as failed. Default: 1h.
  timeout: 30m

# Skip the run (exit 0) when every part's newest complete generation is younger than this, so a cron
# job that runs often makes at most one generation a day. Default: none.
min-interval: 20h

# Back up the parts at the same time instead of one after the other. Default: false.
parallel-parts: false

# A source that lost more than this share of its entries since the previous generation (an
# unmounted file system, a bind mount gone) is refused, nothing published; a part may set its
# own under parts: (100% never refuses); --accept-source-change accepts one run. Default: 50%.
# max-source-loss: 50%

# Prometheus metrics, for node_exporter's textfile collector. Default: none.
metrics-file: /var/lib/prometheus/node-exporter/hardsnap.prom

# Where a renamed or copied file is looked for to link it instead of copying it again:
# "part" (the same part's earlier generations), "host" (every part of this host) or "off".
# Default: part.
dedup: part

# How many generations of the part such a file is looked for in: the previous one and those
# before it (a folder deleted, then restored into the source, is linked again). Default: 7.
dedup-generations: 7

# Compare the bytes of the two files before such a content link, so that a hash collision can
# never link the wrong file (docs/CONTENT.md). Default: true.
dedup-verify: true

# Compare file contents, not just size and modification time, to find unchanged files.
# Slow: it reads every file. Default: false.
checksum: false

# When another run holds the lock: false to exit at once (exit 3), true to wait for it, or a
# duration to wait at most that long. Default: false.
wait: 1h

# Watch mode (hardsnap watch, docs/WATCH.md): a backup skips the scan of directories the
# watcher's journal knows are unchanged. journal: false never uses it; full-scan-every forces a
# full scan at least that often (default 7d); audit-sample is how many skipped directories are
# checked against the previous manifest (default 100); journal-timeout is how long a backup
# waits for the watcher's answer (default 10s); backup-every makes the watcher start a backup
# itself, at most that often, after changes (default: never); watcher chooses what watches the
# sources: auto (fanotify as root on Linux >= 5.9, chokidar elsewhere), fanotify or chokidar.
# journal: true
# full-scan-every: 7d
# audit-sample: 100
# journal-timeout: 10s
# backup-every: 1h
# watcher: auto
`;

export function exampleConfig(): string {
  return EXAMPLE;
}
