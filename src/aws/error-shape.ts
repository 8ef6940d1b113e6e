/**
 * Refusals in the shape an AWS SDK parses, so its user reads the reason
 * (`An error occurred (AccessDenied) ... mintfs ERR_CAVEAT_UNSATISFIED: ...`)
 * rather than an unparseable body: S3's XML, the query protocol's XML
 * (STS, IAM, SQS...), and JSON with x-amzn-ErrorType (JSON and REST-JSON
 * protocols: Lambda, Bedrock, DynamoDB...). The status stays the gateway's.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { MintfsErrorCode } from '../errors.js';

export interface RenderedError {
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type ErrorRenderer = (
  code: MintfsErrorCode,
  message: string,
  status: number,
) => RenderedError;

type Protocol = 's3' | 'query' | 'json';

/** The AWS error code a refusal is given, by protocol. */
function awsCode(code: MintfsErrorCode, status: number, protocol: Protocol): string {
  const json = protocol === 'json';
  if (code === 'ERR_TOKEN_EXPIRED') return json ? 'ExpiredTokenException' : 'ExpiredToken';
  if (status === 401) return json ? 'UnrecognizedClientException' : 'InvalidToken';
  if (status === 403) return json ? 'AccessDeniedException' : 'AccessDenied';
  if (status === 413)
    return protocol === 's3' ? 'EntityTooLarge' : json ? 'ValidationException' : 'InvalidRequest';
  if (status === 429)
    return json ? 'ThrottlingException' : protocol === 's3' ? 'SlowDown' : 'Throttling';
  if (status >= 500) return json ? 'InternalFailure' : 'ServiceUnavailable';
  return json ? 'ValidationException' : 'InvalidRequest';
}

function protocolOf(service: string, headers: IncomingHttpHeaders): Protocol {
  if (service === 's3') return 's3';
  const type = String(headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('application/x-www-form-urlencoded')) return 'query';
  return 'json';
}

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The renderer for a request to `service` (its signing name) with these headers. */
export function awsErrorRenderer(service: string, headers: IncomingHttpHeaders): ErrorRenderer {
  const protocol = protocolOf(service, headers);
  return (code, message, status) => {
    const name = awsCode(code, status, protocol);
    const text = `mintfs ${code}: ${message}`;
    if (protocol === 's3')
      return {
        contentType: 'application/xml',
        body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${name}</Code><Message>${xml(text)}</Message><RequestId>mintfs</RequestId></Error>\n`,
      };
    if (protocol === 'query')
      return {
        contentType: 'text/xml',
        body: `<ErrorResponse><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${name}</Code><Message>${xml(text)}</Message></Error><RequestId>mintfs</RequestId></ErrorResponse>\n`,
      };
    return {
      contentType: 'application/json',
      body: `${JSON.stringify({ __type: name, message: text })}\n`,
      headers: { 'x-amzn-errortype': name },
    };
  };
}
