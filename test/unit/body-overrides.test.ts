/**
 * The body scanner from the attacker's side: a `_method` field in a form,
 * multipart or JSON body is refused however the body is split into chunks
 * and however the name is spelled, and the upstream never gets the whole
 * body of a refused request; ordinary bodies (Stripe's payment_method, a
 * JSON "method" key) pass byte for byte.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bodyOverrideScanner, HOLD_LIMIT } from '../../src/gateway/body-overrides.js';

/** Feeds `body` in the given pieces; what passed before the verdict, and the verdict. */
async function run(
  type: string,
  body: Buffer,
  cuts: readonly number[] = [],
): Promise<{ passed: Buffer; refused: string | undefined }> {
  const scanner = bodyOverrideScanner(type);
  assert.ok(scanner, type);
  const out: Buffer[] = [];
  scanner.on('data', (c: Buffer) => out.push(c));
  const verdict = new Promise<string | undefined>((resolve) => {
    scanner.once('error', (err) => resolve(err.message));
    scanner.once('end', () => resolve(undefined));
  });
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const point of [...points, body.length]) {
    if (point > from) scanner.write(body.subarray(from, point));
    from = point;
  }
  scanner.end();
  const refused = await verdict;
  return { passed: Buffer.concat(out), refused };
}

const FORM = 'application/x-www-form-urlencoded';
const MULTIPART = 'multipart/form-data; boundary=XyZ';
const JSON_TYPE = 'application/json';

const multipart = (name: string) =>
  `--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n--XyZ\r\n${name}\r\n\r\nDELETE\r\n--XyZ--\r\n`;

const REFUSED: Array<[string, string]> = [
  [FORM, 'title=x&_method=DELETE'],
  [FORM, '_method=DELETE'],
  [FORM, 'a=1;_method=DELETE'],
  [FORM, 'title=x&%5Fmethod=DELETE'],
  [FORM, 'title=x&_meth%6Fd=DELETE'],
  [FORM, 'title=x&.method=DELETE'],
  [FORM, 'title=x&+_method=DELETE'],
  [FORM, 'title=x&_METHOD=DELETE'],
  [FORM, 'title=x&_method'],
  [FORM, 'x-http-method-override=DELETE'],
  [MULTIPART, multipart('Content-Disposition: form-data; name="_method"')],
  [MULTIPART, multipart('content-disposition: form-data; name=_method')],
  [MULTIPART, multipart('Content-Disposition : form-data; name="_method"')],
  [MULTIPART, multipart("Content-Disposition: form-data; name*=UTF-8''%5Fmethod")],
  [MULTIPART, multipart('Content-Disposition: form-data;name="[method"')],
  [JSON_TYPE, '{"title":"x","_method":"DELETE"}'],
  [JSON_TYPE, '{"title":"x","\\u005fmethod":"DELETE"}'],
  ['application/vnd.api+json', '{"_method":"DELETE"}'],
];

const PASSED: Array<[string, string]> = [
  [FORM, 'amount=100&payment_method=pm_card_visa&method=card'],
  [FORM, 'method_type=x&my_method=y&_methods=z'],
  [FORM, ''],
  [MULTIPART, multipart('Content-Disposition: form-data; name="payment_method"')],
  [MULTIPART, multipart('Content-Disposition: form-data; name="file"; filename="_method"')],
  [JSON_TYPE, '{"method":"tools/call","params":{"name":"x"}}'],
  [JSON_TYPE, '{"payment_method":"pm_1","text":"a long value about the _method field"}'],
];

describe('method overrides in bodies', () => {
  it('refuses a _method field in form, multipart and JSON bodies, however spelled', async () => {
    for (const [type, body] of REFUSED) {
      const { refused } = await run(type, Buffer.from(body));
      assert.match(refused ?? '', /is refused/, `${type}: ${body}`);
    }
  });

  it('lets ordinary bodies through byte for byte', async () => {
    for (const [type, body] of PASSED) {
      const { refused, passed } = await run(type, Buffer.from(body));
      assert.equal(refused, undefined, `${type}: ${body}`);
      assert.equal(passed.toString(), body);
    }
  });

  it('decides the same however the body is cut into chunks, and never passes all of a refused body', async () => {
    const cases = [
      ...REFUSED.map((c) => [...c, true] as const),
      ...PASSED.map((c) => [...c, false] as const),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...cases),
        fc.array(fc.nat(), { maxLength: 12 }),
        async ([type, body, refusedWhole], cuts) => {
          const bytes = Buffer.from(body);
          const { refused, passed } = await run(type, bytes, cuts);
          assert.equal(refused !== undefined, refusedWhole, `${body} cut at ${cuts.join(',')}`);
          if (refusedWhole) assert.ok(passed.length < bytes.length, 'the upstream got it all');
          else assert.deepEqual(passed, bytes);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('holds back at most HOLD_LIMIT bytes; a body curl sent with its default form type streams', async () => {
    // Padding an override key with spaces, past what is held: refused.
    const padded = await run(
      FORM,
      Buffer.from(`${'+'.repeat(HOLD_LIMIT + 10)}_method=DELETE`),
      [100, 5000],
    );
    assert.match(padded.refused ?? '', /4096 bytes of spaces/);
    const short = await run(
      FORM,
      Buffer.from(`${'+'.repeat(300)}_method${'%20'.repeat(50)}=DELETE`),
      [7],
    );
    assert.match(short.refused ?? '', /is refused/);
    // `curl -d @file` labels JSON and binary files as forms: one long key, or
    // keys with stray `%`, are no override and pass byte for byte.
    const json = `{"title":"${'t'.repeat(10_000)}","body":"_method"}`;
    const asForm = await run(FORM, Buffer.from(json), [5, 6000]);
    assert.equal(asForm.refused, undefined);
    assert.equal(asForm.passed.toString(), json);
    const binary = randomBytes(300_000);
    const blob = await run(FORM, binary, [1000, 100_000]);
    assert.equal(blob.refused, undefined);
    assert.deepEqual(blob.passed, binary);
    // Long values and long JSON strings are no names: they stream.
    const value = `a=${'v'.repeat(200_000)}`;
    assert.equal((await run(FORM, Buffer.from(value), [7, 70_000])).refused, undefined);
    const long = `{"text":"${'v'.repeat(200_000)}"}`;
    assert.equal((await run(JSON_TYPE, Buffer.from(long), [9, 90_000])).refused, undefined);
  });

  it('has no scanner for bodies no framework reads fields from', () => {
    for (const type of ['application/octet-stream', 'text/plain', 'image/png', undefined])
      assert.equal(bodyOverrideScanner(type), undefined);
  });
});
