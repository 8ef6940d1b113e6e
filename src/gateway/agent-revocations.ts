/**
 * `mintfs revoke --agent A` reaches upstream: when the revocation list gains
 * an agent record, the credentials minted for that agent are dropped from
 * the cache and revoked where their source can (GitHub installation tokens).
 * The agent's revoked tokens are refused by the verifier already; this ends
 * what the gateway minted for them, so a stolen copy of an upstream token
 * (an agent that printed it from a response it should not have seen) dies too.
 */
import type { RevocationFeed } from '../revocation/revocations.js';
import type { CredentialStore } from './credentials.js';

/** Starts watching; returns how to stop. */
export function revokeMintedOnAgentRevocation(
  revocations: RevocationFeed,
  credentials: () => CredentialStore,
): () => void {
  const keyOf = (record: { agent: string; revokedAt: string }) =>
    `${record.agent}\u0000${record.revokedAt}`;
  // Records present at start revoked tokens before anything here was minted.
  const seen = new Set(
    revocations.current.records.flatMap((r) => (r.kind === 'agent' ? [keyOf(r)] : [])),
  );
  return revocations.onReload((list) => {
    for (const record of list.records) {
      if (record.kind !== 'agent' || seen.has(keyOf(record))) continue;
      seen.add(keyOf(record));
      void credentials().revokeAgent(record.agent);
    }
  });
}
