/**
 * Method overrides carried in a request body: Rails (Rack::MethodOverride),
 * Laravel, Symfony and Spring's HiddenHttpMethodFilter read a `_method`
 * field from a form-encoded or multipart POST, and Laravel from a JSON body
 * too, and run the request as that method. A token allowing `POST /x` would
 * otherwise run `DELETE /x`.
 *
 * The body streams through a scanner on its way upstream. The bytes of a
 * field name not yet decided (a form key, a multipart part's
 * Content-Disposition line, a short JSON string) are held back until it is,
 * so the upstream never has the whole request before the verdict: on a
 * match the body fails, the upstream request is aborted with its body short,
 * and the client gets a 400. Bounded: what is held is at most HOLD_LIMIT
 * bytes; a form key or part header longer than that is refused (no field a
 * client needs has such a name).
 *
 * Fail closed where cheap: a JSON string equal to `_method` is refused
 * whether it is a key or a value (telling them apart would mean holding the
 * whitespace after it), and so is a Content-Disposition line inside a file's
 * contents that names such a field.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { fieldNameProblem } from './request-overrides.js';

/** Most bytes held back while a field name is undecided. */
export const HOLD_LIMIT = 4096;

/** The longest decoded name that can be an override key ('x-http-method-override'), with room for folding. */
const LONGEST_NAME = 64;

interface Scanner {
  /**
   * Reads `chunk` (stream offset `at`); returns a refusal, or where the
   * undecided name starts (a stream offset; Infinity when none is pending).
   */
  scan(chunk: Buffer, at: number): { problem?: string; pendingFrom: number };
  /** The body ended: decides what is pending. */
  end(): string | undefined;
}

/** A scanning stream for a body of this Content-Type, or undefined for types no framework reads fields from. */
export function bodyOverrideScanner(contentType: string | undefined): Transform | undefined {
  const type = (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
  let scanner: Scanner;
  if (type === 'application/x-www-form-urlencoded') scanner = new FormScanner();
  else if (type === 'multipart/form-data') scanner = new MultipartScanner();
  else if (type.endsWith('/json') || type.endsWith('+json')) scanner = new JsonScanner();
  else return undefined;
  return scanningStream(scanner);
}

function scanningStream(scanner: Scanner): Transform {
  let held: Buffer = Buffer.alloc(0);
  /** Stream offset of held[0]. */
  let heldAt = 0;
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      const { problem, pendingFrom } = scanner.scan(chunk, seen);
      seen += chunk.length;
      if (problem !== undefined) return done(overrideError(problem));
      const all = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
      const pass = Math.max(0, Math.min(all.length, pendingFrom - heldAt));
      const keep = all.length - pass;
      if (keep > HOLD_LIMIT)
        return done(overrideError(`a field name over ${HOLD_LIMIT} bytes is refused`));
      held = Buffer.from(all.subarray(pass));
      heldAt += pass;
      done(null, pass > 0 ? all.subarray(0, pass) : undefined);
    },
    flush(done: TransformCallback) {
      const problem = scanner.end();
      if (problem !== undefined) return done(overrideError(problem));
      done(null, held.length > 0 ? held : undefined);
    },
  });
}

function overrideError(problem: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`body field ${problem}`);
  err.code = 'ERR_BODY_OVERRIDE_MINTFS';
  return err;
}

const AMP = 0x26;
const SEMI = 0x3b;
const EQ = 0x3d;

/**
 * application/x-www-form-urlencoded: keys between `&` or `;` and `=`. A key
 * is held only while it could still be an override key once its spaces are
 * trimmed (at most LONGEST_RAW other raw characters): a JSON document or a
 * file that curl sent with its default form type is one long key, and
 * passes as it comes.
 */
class FormScanner implements Scanner {
  #state: 'key' | 'hopeless' | 'value' = 'key';
  #keyFrom = 0;
  #key = '';

  scan(chunk: Buffer, at: number): { problem?: string; pendingFrom: number } {
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 'value') {
        const next = nextOf(chunk, i, AMP, SEMI);
        if (next < 0) break;
        i = next + 1;
        this.#startKey(at + i);
        continue;
      }
      let j = i;
      while (j < chunk.length) {
        const c = chunk[j];
        if (c === EQ || c === AMP || c === SEMI) break;
        j += 1;
      }
      if (this.#state === 'key') {
        this.#key += chunk.toString('latin1', i, j);
        if (!mayBeOverrideKey(this.#key)) {
          this.#state = 'hopeless';
          this.#key = '';
        } else if (this.#key.length > HOLD_LIMIT)
          return {
            problem: `a form key of ${HOLD_LIMIT} bytes of spaces is refused`,
            pendingFrom: 0,
          };
      }
      if (j === chunk.length) break;
      if (this.#state === 'key') {
        const problem = lenientFormKeyProblem(this.#key);
        if (problem !== undefined) return { problem, pendingFrom: Infinity };
      }
      i = j + 1;
      if (chunk[j] === EQ) this.#state = 'value';
      else this.#startKey(at + i);
    }
    return { pendingFrom: this.#state === 'key' ? this.#keyFrom : Infinity };
  }

  end(): string | undefined {
    return this.#state === 'key' ? lenientFormKeyProblem(this.#key) : undefined;
  }

  #startKey(from: number): void {
    this.#state = 'key';
    this.#key = '';
    this.#keyFrom = from;
  }
}

/** Raw spellings of whitespace a key may be padded with (trimmed before it is compared). */
const RAW_SPACES = /\+|%(?:2[0]|0[9a-d])|%c2%a0|\s/gi;
/** The longest raw override key: 'x-http-method-override', every character percent-encoded. */
const LONGEST_RAW = 3 * 22;

function mayBeOverrideKey(raw: string): boolean {
  return raw.length <= LONGEST_RAW || raw.replace(RAW_SPACES, '').length <= LONGEST_RAW;
}

/**
 * As a form parser reads a key: `+` is a space, valid `%XX` escapes decoded,
 * anything else kept as written (PHP's urldecode; a binary body curl labelled
 * as a form is no error).
 */
function lenientFormKeyProblem(raw: string): string | undefined {
  const bytes = Buffer.from(
    raw
      .replace(/\+/g, ' ')
      .replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    'latin1',
  );
  return fieldNameProblem(bytes.toString('utf8'));
}

function nextOf(chunk: Buffer, from: number, a: number, b: number): number {
  const x = chunk.indexOf(a, from);
  const y = chunk.indexOf(b, from);
  return x < 0 ? y : y < 0 ? x : Math.min(x, y);
}

// No colon: Tomcat's (and Spring's) part parser trims `Content-Disposition :`.
const DISPOSITION = 'content-disposition';
const NEWLINE = 0x0a;

/**
 * multipart/form-data: each part names its field in a Content-Disposition
 * line. Lines that begin so (case aside) are held whole and their `name`
 * read; every other line passes as it comes.
 */
class MultipartScanner implements Scanner {
  /** The current line's bytes, while it may still be a Content-Disposition line. */
  #line: Buffer[] | undefined = [];
  #lineLength = 0;
  #lineFrom = 0;
  /** Its first bytes (up to DISPOSITION's length), lower-cased. */
  #prefix = '';

  scan(chunk: Buffer, at: number): { problem?: string; pendingFrom: number } {
    let i = 0;
    while (i < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, i);
      const end = newline < 0 ? chunk.length : newline;
      if (this.#line !== undefined) {
        if (this.#prefix.length < DISPOSITION.length)
          this.#prefix += chunk
            .subarray(i, Math.min(end, i + DISPOSITION.length - this.#prefix.length))
            .toString('latin1')
            .toLowerCase();
        if (!DISPOSITION.startsWith(this.#prefix) && !this.#prefix.startsWith(DISPOSITION))
          this.#line = undefined;
        else {
          this.#line.push(chunk.subarray(i, end));
          this.#lineLength += end - i;
          if (this.#lineLength > HOLD_LIMIT)
            return { problem: `a part header over ${HOLD_LIMIT} bytes is refused`, pendingFrom: 0 };
        }
      }
      if (newline < 0) break;
      const problem = this.#lineEnded();
      if (problem !== undefined) return { problem, pendingFrom: Infinity };
      i = newline + 1;
      this.#line = [];
      this.#lineLength = 0;
      this.#prefix = '';
      this.#lineFrom = at + i;
    }
    return { pendingFrom: this.#line === undefined ? Infinity : this.#lineFrom };
  }

  end(): string | undefined {
    return this.#lineEnded();
  }

  #lineEnded(): string | undefined {
    if (this.#line === undefined) return undefined;
    const text = Buffer.concat(this.#line).toString('utf8');
    this.#line = undefined;
    if (text.length < DISPOSITION.length) return undefined;
    for (const name of dispositionNames(text)) {
      const problem = fieldNameProblem(name);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
}

/** Every `name` a Content-Disposition line gives (quoted, bare, or RFC 5987 `name*`), decoded. */
export function dispositionNames(line: string): string[] {
  const names: string[] = [];
  const param = /[;:\s]\s*name(\*?)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/gi;
  for (const match of line.matchAll(param)) {
    const quoted = match[2];
    let value = quoted === undefined ? (match[3] ?? '') : quoted.replace(/\\(.)/g, '$1');
    if (match[1] === '*') value = value.replace(/^[^']*'[^']*'/, '');
    names.push(value);
    try {
      names.push(decodeURIComponent(value));
    } catch {
      // Not percent-encoded after all: the name as written was checked.
    }
  }
  return names;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * JSON: every string short enough to be an override key is decoded (escapes
 * included, `\u005fmethod` is `_method`) and checked, held until it closes.
 */
class JsonScanner implements Scanner {
  #inString = false;
  #escaped = false;
  #string: Buffer[] = [];
  #stringLength = 0;
  #stringFrom = 0;

  scan(chunk: Buffer, at: number): { problem?: string; pendingFrom: number } {
    let i = 0;
    while (i < chunk.length) {
      if (!this.#inString) {
        const quote = chunk.indexOf(QUOTE, i);
        if (quote < 0) break;
        this.#inString = true;
        this.#escaped = false;
        this.#string = [];
        this.#stringLength = 0;
        this.#stringFrom = at + quote;
        i = quote + 1;
        continue;
      }
      let j = i;
      while (j < chunk.length) {
        const c = chunk[j];
        if (this.#escaped) this.#escaped = false;
        else if (c === BACKSLASH) this.#escaped = true;
        else if (c === QUOTE) break;
        j += 1;
      }
      if (this.#stringLength <= LONGEST_NAME * 6) {
        this.#string.push(chunk.subarray(i, j));
        this.#stringLength += j - i;
      }
      if (j === chunk.length) break;
      const problem = this.#stringEnded();
      if (problem !== undefined) return { problem, pendingFrom: Infinity };
      this.#inString = false;
      i = j + 1;
    }
    // A string that cannot decode to a short name no longer needs holding.
    const pending = this.#inString && this.#stringLength <= LONGEST_NAME * 6;
    return { pendingFrom: pending ? this.#stringFrom : Infinity };
  }

  end(): string | undefined {
    return undefined;
  }

  #stringEnded(): string | undefined {
    if (this.#stringLength > LONGEST_NAME * 6) return undefined;
    let text: unknown;
    try {
      text = JSON.parse(`"${Buffer.concat(this.#string).toString('utf8')}"`);
    } catch {
      // Not a JSON string: the upstream's parser refuses the body as well.
      return undefined;
    }
    return typeof text === 'string' ? fieldNameProblem(text) : undefined;
  }
}
