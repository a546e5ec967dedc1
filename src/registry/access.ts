/** The access contract lives in the auth module (src/auth/access.ts); re-exported for the registry's callers. */
export { ANONYMOUS, openGate, type AccessGate, type Action, type Need, type Principal, type RequestIdentity } from '../auth/access.js';
