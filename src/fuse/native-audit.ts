/**
 * Reads the native addon's audit batches (takeAudit, stop) into events.
 * The layout is addon.c's (audit_result): per event AUDIT_NUMBERS doubles
 * and AUDIT_STRINGS strings, in the orders below. The addon sends its counts
 * with every batch, and a batch laid out otherwise (an addon built from other
 * sources: a bug, never input) throws rather than be read into wrong audit
 * lines.
 */
import type { NativeAuditBatch, NativeAuditEvent } from './native-addon.js';

const KIND = 0;
const PATH_ID = 1;
const EXPIRES_S = 2;
const READER_CAVEAT = 3;
const UID = 4;
const GID = 5;
const PID = 6;
const START_TICKS = 7;
const AUDIT_NUMBERS = 8;

const TOKEN_ID = 0;
const KEY_ID = 1;
const REASON = 2;
const EXE = 3;
const CGROUP = 4;
const AUDIT_STRINGS = 5;

/** addon.c's enum audit_kind, by value. */
const KINDS = [undefined, 'minted', 'denied', 'failed'] as const;

export function auditEvents(batch: NativeAuditBatch): NativeAuditEvent[] {
  const { count, numbers, strings } = batch;
  if (
    batch.numbersPerEvent !== AUDIT_NUMBERS ||
    batch.stringsPerEvent !== AUDIT_STRINGS ||
    numbers.length !== count * AUDIT_NUMBERS ||
    strings.length !== count * AUDIT_STRINGS
  )
    throw new Error(
      `the native addon's audit batch is not laid out as this build reads it (${batch.numbersPerEvent} numbers and ${batch.stringsPerEvent} strings per event); rebuild it`,
    );
  const events = new Array<NativeAuditEvent>(count);
  for (let i = 0, n = 0, s = 0; i < count; i++, n += AUDIT_NUMBERS, s += AUDIT_STRINGS) {
    const kind = KINDS[numbers[n + KIND] ?? 0];
    if (kind === undefined)
      throw new Error(`the native addon sent audit event kind ${numbers[n + KIND]}`);
    events[i] = {
      kind,
      pathId: numbers[n + PATH_ID] ?? 0,
      tokenId: strings[s + TOKEN_ID] ?? '',
      keyId: strings[s + KEY_ID] ?? '',
      expiresS: numbers[n + EXPIRES_S] ?? 0,
      readerCaveat: numbers[n + READER_CAVEAT] === 1,
      reason: strings[s + REASON] ?? '',
      reader: {
        uid: numbers[n + UID] ?? 0,
        gid: numbers[n + GID] ?? 0,
        pid: numbers[n + PID] ?? 0,
        startTicks: numbers[n + START_TICKS] ?? 0,
        exe: strings[s + EXE] ?? '',
        cgroup: strings[s + CGROUP] ?? '',
      },
    };
  }
  return events;
}
