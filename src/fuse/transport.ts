/**
 * How the native backend receives FUSE requests: `classic` reads /dev/fuse
 * (one read and one write per request, the default); `uring` asks the kernel
 * for FUSE over io_uring (Linux 6.14+ with the fuse module's enable_uring
 * parameter on; one io_uring_enter per request) and falls back to /dev/fuse,
 * with a warning saying why, where the kernel does not offer it; `auto` asks
 * only when that parameter is on, and says so at info level when it is not.
 */
import { readFileSync } from 'node:fs';
import * as z from '../util/zod-mini.js';

export const FuseTransportSchema = z
  .enum(['classic', 'uring', 'auto'])
  .check(
    z.describe(
      'How the native backend receives FUSE requests: classic (/dev/fuse reads, the default), uring (FUSE over io_uring, falling back to classic with a warning), auto (uring when /sys/module/fuse/parameters/enable_uring is on)',
    ),
  );
export type FuseTransport = z.infer<typeof FuseTransportSchema>;

/** What actually serves a mount's requests. */
export type ActiveTransport = 'classic' | 'uring';

export const ENABLE_URING_PARAMETER = '/sys/module/fuse/parameters/enable_uring';

/** Whether the fuse module lets servers take requests over io_uring (Y), by its parameter. */
export function kernelUringEnabled(parameter = ENABLE_URING_PARAMETER): boolean {
  try {
    return readFileSync(parameter, 'utf8').trim() === 'Y';
  } catch {
    // No such parameter: a kernel before 6.14, or fuse built without it.
    return false;
  }
}
