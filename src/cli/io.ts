/** Command output and diagnostics: stdout for the command's result only. */
import { readFileSync } from 'node:fs';
import { MintfsError } from '../errors.js';

export function printResult(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  printResult(JSON.stringify(value, null, 2));
}

export function printDiagnostic(line: string): void {
  process.stderr.write(`mintfs: ${line}\n`);
}

/** The token argument, or the whole of stdin when it is omitted. */
export function tokenArgument(token: string | undefined): string {
  if (token !== undefined) return token;
  if (process.stdin.isTTY)
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      'no token given (pass it as an argument or on stdin)',
    );
  return readFileSync(0, 'utf8');
}
