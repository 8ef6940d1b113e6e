/**
 * First-party caveats: parsed once from their string form into small values,
 * each with one `check(request)` that returns why the request is refused.
 *
 *   time-before 2026-11-22T01:20:00Z   service github     agent demo-agent
 *   host api.github.com                method GET HEAD    path /repos/acme/**
 *   github-repos widgets gadgets       github-perms contents=read metadata=read
 *   uses 1                             reader uid=1000 gid=1000 pid=4242 start=99 exe=/usr/bin/cat cgroup=/ctr
 *
 * One module per kind under caveats/, listed once in caveats/registry.ts;
 * this module is the door the rest of the code uses.
 */
export type { Caveat, CaveatKind, CaveatRequest, ParsedCaveat } from './caveats/kind.js';
export type { AgentCaveat } from './caveats/agent.js';
export type { ReaderCaveat } from './caveats/reader.js';
export { MAX_USES, type UsesCaveat } from './caveats/uses.js';
export { AWS_POLICY_NAME, awsPoliciesOf } from './caveats/aws-policy.js';
export { formatTimeBefore, type TimeBeforeCaveat } from './caveats/time-before.js';
export {
  GITHUB_LEVELS,
  GITHUB_PERMISSION,
  GITHUB_REPOSITORY,
  githubGrantOf,
  lowerLevel,
  type GitHubGrant,
  type GitHubLevel,
} from './caveats/github.js';
export {
  CAVEAT_KINDS,
  caveatLimitProblem,
  grantCaveats,
  parseCaveat,
  parseCaveatWithinLimits,
  refusalCodeOf,
} from './caveats/registry.js';
