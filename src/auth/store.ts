/**
 * What the auth module keeps in the metadata store: the account roles of
 * src/store/meta/accounts.ts, read through the helpers here, which parse
 * what the store keeps as written (rules, token scopes) into auth's types.
 */
import type { AccountStore, StoredRule, TokenRecord } from '../store/meta/accounts.js';
import { validateRule, type Rule } from './policy.js';
import { parseScope, type AccessEntry } from './scope.js';

export type { AuditEntry, AuditLog, AuditQuery, TokenRecord, UserRecord } from '../store/meta/accounts.js';
export { AuthStoreError } from '../store/meta/accounts.js';

/** Everything the auth module reads and writes: users, groups, tokens, rules, the audit log. */
export type AuthStore = AccountStore;

export function toRule(stored: StoredRule): Rule {
  return validateRule(stored.subject, stored.repositories, stored.actions, String(stored.id));
}

/** The `pier policy` rules in the store, validated. */
export async function storedRules(store: AuthStore): Promise<Rule[]> {
  return (await store.listRules()).map(toRule);
}

export function tokenScopes(record: TokenRecord): AccessEntry[] {
  return record.scopes.map(parseScope);
}
