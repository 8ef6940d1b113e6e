/** RFC 3339 UTC, whole seconds when the instant has no fraction: 2026-11-22T01:20:00Z. */
export function formatInstant(at: Date): string {
  // Mint audit lines format the same expiry second over and over (a reading
  // loop: thousands a second); toISOString was ~5% of the daemon's JS time.
  const ms = at.getTime();
  if (ms === lastFormatted.ms) return lastFormatted.text;
  const iso = at.toISOString();
  const text = iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
  lastFormatted = { ms, text };
  return text;
}
let lastFormatted = { ms: Number.NaN, text: '' };

/** A strict RFC 3339 timestamp with an explicit zone, or undefined. */
export function parseInstant(text: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(text))
    return undefined;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? undefined : at;
}
