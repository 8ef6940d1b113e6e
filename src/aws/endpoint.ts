/**
 * The service and region a request to an AWS host is signed for, found from
 * the host name as AWS SDKs find their endpoints' (endpoint prefix, region),
 * with the few services whose signing name is not their endpoint prefix.
 * Hosts that are not AWS's (a MinIO, a test stand-in behind an AWS name) name
 * both in the upstream's `sign: { sigv4: { service, region } }`.
 */

export interface SigningScope {
  readonly service: string;
  readonly region: string;
}

const REGION = /^(?:[a-z]{2}|us-gov|us-iso[a-z]?|eu-isoe|cn)-[a-z]+-\d{1,2}$/;

/** Endpoint prefixes whose signing name differs (from the SDKs' service models). */
const SIGNING_NAMES: Readonly<Record<string, string>> = {
  'bedrock-runtime': 'bedrock',
  'bedrock-agent': 'bedrock',
  'bedrock-agent-runtime': 'bedrock',
  'runtime.sagemaker': 'sagemaker',
  'runtime.lex': 'lex',
  'runtime-v2-lex': 'lex',
  'api.ecr': 'ecr',
  'api.sagemaker': 'sagemaker',
  'data.iot': 'iotdata',
  email: 'ses',
  'streams.dynamodb': 'dynamodb',
  's3-control': 's3',
  's3-accelerate': 's3',
};

/** Services with one global endpoint, signed for us-east-1 (aws partition). */
const GLOBAL = new Set(['iam', 'sts', 's3', 'route53', 'cloudfront', 'organizations']);

/** The scope for `host`, or undefined when the host is not one AWS SDKs would derive it from. */
export function signingScopeOf(host: string): SigningScope | undefined {
  const suffix = ['.amazonaws.com.cn', '.amazonaws.com', '.api.aws'].find((s) => host.endsWith(s));
  if (suffix === undefined) return undefined;
  const labels = host
    .slice(0, -suffix.length)
    .split('.')
    .filter((label) => label !== 'dualstack' && label !== 'fips');
  const at = labels.findIndex((label) => REGION.test(label));
  if (at >= 0) {
    const prefix = labels.slice(0, at);
    return scopeFor(prefix, labels[at] as string);
  }
  // Legacy S3 names: s3-us-west-2.amazonaws.com, s3-external-1, bucket.s3.amazonaws.com.
  const last = labels[labels.length - 1] ?? '';
  const legacy = /^s3-(.+)$/.exec(last);
  if (legacy && REGION.test(legacy[1] as string))
    return { service: 's3', region: legacy[1] as string };
  if (last === 's3-external-1') return { service: 's3', region: 'us-east-1' };
  const service = serviceName(labels);
  if (service === undefined || !GLOBAL.has(service)) return undefined;
  return { service, region: suffix === '.amazonaws.com.cn' ? 'cn-north-1' : 'us-east-1' };
}

function scopeFor(prefix: readonly string[], region: string): SigningScope | undefined {
  const service = serviceName(prefix);
  return service === undefined ? undefined : { service, region };
}

/** The signing name from the labels before the region (bucket names and account ids first). */
function serviceName(labels: readonly string[]): string | undefined {
  if (labels.length === 0) return undefined;
  // Virtual-hosted S3 (bucket.s3...), S3 Control (account.s3-control...): S3 is found by its label.
  if (labels.some((label) => label === 's3' || label.startsWith('s3-'))) return 's3';
  for (let from = 0; from < labels.length; from++) {
    const joined = labels.slice(from).join('.');
    const named = SIGNING_NAMES[joined];
    if (named !== undefined) return named;
  }
  const last = labels[labels.length - 1] as string;
  return SIGNING_NAMES[last] ?? last;
}
