/** Sizes on the command line: `512M`, `2G`, `1048576` (bytes), binary units. */
const UNIT = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 } as const;
const SIZE = /^(\d{1,12})([kmgt]?)i?b?$/i;

/** Bytes for a size string, or undefined when it is not one. */
export function parseByteSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * UNIT[(match[2] ?? '').toLowerCase() as keyof typeof UNIT];
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
