/**
 * Parses the `policy` list of the configuration:
 * `{subjects: [...], repositories: [...], actions: [...]}` (each field a
 * list or one string), expanded to one {@link Rule} per subject and
 * pattern. A mistake throws {@link PolicyError} naming the entry
 * (`[2].subjects: ...`), which the config loader prefixes with the key.
 */
import { PolicyError, validateRule, type Rule } from './policy.js';

export class PolicyConfigError extends PolicyError {
  constructor(
    readonly at: string,
    message: string,
  ) {
    super(message);
  }
}

export function parsePolicyRules(raw: unknown): Rule[] {
  let list = raw;
  if (typeof raw === 'string') {
    try {
      list = JSON.parse(raw);
    } catch {
      throw new PolicyConfigError('', 'must be a list of rules (as JSON in the environment)');
    }
  }
  if (!Array.isArray(list)) throw new PolicyConfigError('', 'must be a list of rules like {subjects: [group:dev], repositories: [team/*], actions: [pull, push]}');
  const strings = (at: string, v: unknown): string[] => {
    const arr = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(arr) || arr.length === 0 || !arr.every((x) => typeof x === 'string')) throw new PolicyConfigError(at, 'must be a string or a non-empty list of strings');
    return arr;
  };
  const rules: Rule[] = [];
  list.forEach((item: unknown, i) => {
    const at = `[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new PolicyConfigError(at, 'must be a mapping with subjects, repositories and actions');
    const unknown = Object.keys(item).find((k) => !['subjects', 'repositories', 'actions'].includes(k));
    if (unknown !== undefined) throw new PolicyConfigError(`${at}.${unknown}`, 'unknown key (expected subjects, repositories, actions)');
    const r = item as Record<string, unknown>;
    const subjects = strings(`${at}.subjects`, r.subjects);
    const patterns = strings(`${at}.repositories`, r.repositories);
    const actions = strings(`${at}.actions`, r.actions);
    for (const subject of subjects) {
      for (const pattern of patterns) {
        try {
          rules.push(validateRule(subject, pattern, actions, `config:${i}`));
        } catch (err) {
          if (err instanceof PolicyError && !(err instanceof PolicyConfigError)) throw new PolicyConfigError(at, err.message);
          throw err;
        }
      }
    }
  });
  return rules;
}
