/** The default host ID: the host's primary IPv4 address (BlueMind's dp_spool/rsync/<ip>/). */
import os from 'node:os';
import { UsageError } from '../core/errors.js';

export function primaryIPv4(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new UsageError('this host has no non-loopback IPv4 address to name its spool directory', {
    hint: 'give one with --host ID',
  });
}
