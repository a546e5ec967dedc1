/** The config schema builder (pure): one declaration gives the type, default, environment name and the union rules. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { count, dataPath, describeKeys, flag, localPath, oneOf, readConfig, section, seconds, text, union, type Out } from '../../src/shared/config-schema.js';

class Bad extends Error {}

const schema = section({
  data: localPath({ default: '/srv/data', doc: 'data' }),
  name: text({ doc: 'optional' }),
  level: oneOf(['low', 'high'], { default: 'low', doc: 'level' }),
  store: union(
    { default: 'disk', doc: 'store' },
    {
      disk: section({ path: dataPath({ default: 'blobs', doc: 'path' }), fsync: flag({ default: true, doc: 'fsync' }) }),
      cloud: section({ bucket: text({ required: true, doc: 'bucket' }), path: text({ doc: 'prefix' }) }),
    },
  ),
  retry: section({ every: seconds({ default: '1m', doc: 'every' }), times: count({ default: 3, atLeast: 1, env: 'RETRIES', doc: 'times' }) }, (v, ctx) =>
    v.every === 0 && v.times > 1 ? ctx.fail('must be above 0 when times > 1', '.every') : v,
  ),
});

function read(values: Record<string, unknown>) {
  return readConfig(schema, new Map(Object.entries(values)), { env: {}, dataKey: 'data', error: (key, message) => new Bad(`${key}: ${message}`) });
}

test('the type and the values follow from the declarations', () => {
  const c: Out<typeof schema> = read({});
  const level: 'low' | 'high' = c.level;
  const name: string | undefined = c.name;
  assert.equal(level, 'low');
  assert.equal(name, undefined);
  assert.deepEqual(c.store, { type: 'disk', path: path.join('/srv/data', 'blobs'), fsync: true });
  assert.deepEqual(c.retry, { every: 60, times: 3 });
  assert.deepEqual(read({ 'retry.times': '0' }).retry.times, 1, 'atLeast raises, not refuses');
});

test('describeKeys lists every key once, with its environment name, default and variant', () => {
  const keys = describeKeys(schema);
  assert.deepEqual(
    keys.map((k) => [k.key, k.env, k.default, k.variant?.[1]]),
    [
      ['data', 'PIER_DATA', '/srv/data', undefined],
      ['name', 'PIER_NAME', undefined, undefined],
      ['level', 'PIER_LEVEL', 'low', undefined],
      ['store.type', 'PIER_STORE_TYPE', 'disk', undefined],
      ['store.path', 'PIER_STORE_PATH', 'blobs', 'disk'],
      ['store.fsync', 'PIER_STORE_FSYNC', true, 'disk'],
      ['store.bucket', 'PIER_STORE_BUCKET', undefined, 'cloud'],
      ['retry.every', 'PIER_RETRY_EVERY', '1m', undefined],
      ['retry.times', 'RETRIES', 3, undefined],
    ],
  );
});

test('a union: required only in its variant, refused in another, a key both variants have is fine in either', () => {
  assert.throws(() => read({ 'store.type': 'cloud' }), /^Error: store\.bucket: required when store\.type is cloud$/);
  assert.throws(() => read({ 'store.bucket': 'b' }), /store\.bucket: only for store\.type cloud \(store\.type is disk\)/);
  assert.throws(() => read({ 'store.type': 'cloud', 'store.bucket': 'b', 'store.fsync': false }), /store\.fsync: only for store\.type disk/);
  assert.deepEqual(read({ 'store.type': 'cloud', 'store.bucket': 'b', 'store.path': 'pre' }).store, { type: 'cloud', bucket: 'b', path: 'pre' });
  assert.throws(() => read({ 'store.type': 'tape' }), /store\.type: must be one of disk, cloud \(got "tape"\)/);
});

test('bad values and cross-key rules name their key', () => {
  assert.throws(() => read({ level: 'max' }), /level: must be one of low, high/);
  assert.throws(() => read({ 'retry.every': 'soon' }), /retry\.every: must be a duration/);
  assert.throws(() => read({ 'retry.every': '0', 'retry.times': 2 }), /retry\.every: must be above 0 when times > 1/);
  assert.throws(() => read({ name: '' }), /name: must be a non-empty string/);
});
