/** Command output and diagnostics: stdout for the command's result only. */
import { MintfsError } from '../errors.js';
import { TOKEN_LIMITS } from '../token/limits.js';

export function printResult(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  printResult(JSON.stringify(value, null, 2));
}

/** Columns padded to their widest cell, for a person at a terminal. */
export function formatTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function printDiagnostic(line: string): void {
  process.stderr.write(`mintfs: ${line}\n`);
}

/** The token argument, or the whole of stdin when it is omitted. */
export async function tokenArgument(token: string | undefined): Promise<string> {
  if (token !== undefined) return token;
  if (process.stdin.isTTY)
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      'no token given (pass it as an argument or on stdin)',
    );
  return readStdin(TOKEN_LIMITS.maxTokenChars + 64);
}

/**
 * Standard input to its end, however slowly it comes. Not readFileSync(0):
 * on a non-blocking pipe whose writer is slower than us it fails with
 * EAGAIN. Stops past `maxBytes` (a token is far smaller).
 */
async function readStdin(maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes)
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        `standard input is over ${maxBytes} bytes; a token is far shorter`,
      );
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
