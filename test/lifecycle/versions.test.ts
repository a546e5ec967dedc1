/** Pure rules: pattern matching, which versions a history keeps, which tags retention keeps. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tagVersions } from '../../src/lifecycle/history.js';
import { keeps } from '../../src/lifecycle/retention.js';
import { Pattern, immutableRule, namespaceOf, parseImmutableTagRules, parseRetentionRules } from '../../src/lifecycle/rules.js';

test('patterns: * stays in one segment, ** crosses them', () => {
  const p = (s: string) => Pattern.parse(s, '');
  assert.ok(p('app/*').matches('app/web'));
  assert.ok(!p('app/*').matches('app/web/api'));
  assert.ok(p('app/**').matches('app/web/api'));
  assert.ok(p('v*').matches('v1.2.3'));
  assert.ok(!p('v*').matches('latest'));
  assert.ok(p('v?.*').matches('v1.0'));
  assert.ok(!p('a.b').matches('axb'), 'dots are literal');
  assert.equal(namespaceOf('team/app/web'), 'team');
  assert.equal(namespaceOf('solo'), 'solo');
});

test('immutable rules: first match, with exceptions', () => {
  const rules = parseImmutableTagRules([{ repository: 'prod/**', tags: ['v*'], except: ['v*-rc*'] }]);
  assert.ok(immutableRule(rules, 'prod/api', 'v1.0'));
  assert.equal(immutableRule(rules, 'prod/api', 'v1.0-rc1'), undefined);
  assert.equal(immutableRule(rules, 'prod/api', 'latest'), undefined);
  assert.equal(immutableRule(rules, 'dev/api', 'v1.0'), undefined);
});

test('versions: keep N distinct, plus those current within maxAge; a deleted tag keeps none', () => {
  const day = 86_400_000;
  const now = 100 * day;
  // Newest first: A (rollback) <- B <- C <- A, one a day.
  const rows = [
    { action: 'rollback' as const, new_digest: 'A', at: now - 1 * day },
    { action: 'move' as const, new_digest: 'B', at: now - 2 * day },
    { action: 'move' as const, new_digest: 'C', at: now - 3 * day },
    { action: 'create' as const, new_digest: 'A', at: now - 4 * day },
  ];
  const byCount = tagVersions(rows, true, { keep: 2, maxAge: 0 }, now);
  assert.deepEqual(
    byCount.map((v) => [v.digest, v.kept]),
    [
      ['A', true],
      ['B', true],
      ['C', false],
      ['A', true],
    ],
  );
  assert.equal(byCount[0]!.until, undefined);
  assert.equal(byCount[1]!.until?.getTime(), now - 1 * day);
  const byAge = tagVersions(rows, true, { keep: 1, maxAge: 2.5 * 86_400 }, now);
  assert.deepEqual(
    byAge.map((v) => v.kept),
    [true, true, true, true],
    'C stopped being current 2 days ago: within 2.5 days',
  );
  assert.ok(tagVersions(rows, false, { keep: 10, maxAge: 0 }, now).every((v) => !v.kept));
  const withDelete = tagVersions([{ action: 'create', new_digest: 'D', at: 5 }, { action: 'delete', new_digest: null, at: 4 }, { action: 'create', new_digest: 'E', at: 3 }], true, { keep: 2, maxAge: 0 }, 10);
  assert.deepEqual(withDelete.map((v) => [v.digest, v.until?.getTime()]), [['D', undefined], ['E', 4]]);
});

test('retention: a tag is kept if any criterion keeps it', () => {
  const [rule] = parseRetentionRules([{ repository: '**', keepLast: 2, keepDays: 7, keep: ['stable'] }]);
  const now = 30 * 86_400_000;
  const old = now - 20 * 86_400_000;
  assert.ok(keeps(rule!, [], 'r', 'x', 0, old, undefined, now), 'among the last 2');
  assert.ok(!keeps(rule!, [], 'r', 'x', 2, old, undefined, now), 'old, not pulled, third');
  assert.ok(keeps(rule!, [], 'r', 'x', 5, old, now - 86_400_000, now), 'pulled yesterday');
  assert.ok(keeps(rule!, [], 'r', 'stable', 9, old, undefined, now), 'matches keep');
  assert.ok(keeps(rule!, parseImmutableTagRules([{ tags: 'x' }]), 'r', 'x', 9, old, undefined, now), 'immutable');
  const [none] = parseRetentionRules([{ keep: ['a'] }]);
  assert.ok(keeps(none!, [], 'r', 'b', 99, 0, undefined, now), 'no keepLast/keepDays: deletes nothing');
});
