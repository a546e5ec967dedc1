/** The shared grammars (pure): one duration grammar, one byte grammar and formatter, one loopback rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, parseBytes } from '../../src/shared/bytes.js';
import { parseDuration } from '../../src/shared/duration.js';
import { isLoopback } from '../../src/shared/loopback.js';

test('durations: a number and s (default), m, h, d or w', () => {
  const cases: [unknown, number | undefined][] = [
    ['30', 30],
    ['30s', 30],
    ['10m', 600],
    ['1.5h', 5400],
    [' 7d ', 7 * 86400],
    ['2w', 14 * 86400],
    [45, 45],
    ['', undefined],
    ['-1s', undefined],
    ['10y', undefined],
    ['h', undefined],
    [-5, undefined],
    [null, undefined],
  ];
  for (const [text, seconds] of cases) assert.equal(parseDuration(text), seconds, JSON.stringify(text));
});

test('sizes: binary multiples in any spelling, integers only', () => {
  const cases: [unknown, number | undefined][] = [
    ['512', 512],
    ['512b', 512],
    ['4M', 4 * 1024 ** 2],
    ['4MiB', 4 * 1024 ** 2],
    ['4mb', 4 * 1024 ** 2],
    ['512k', 512 * 1024],
    ['1G', 1024 ** 3],
    ['2 TiB', 2 * 1024 ** 4],
    [4096, 4096],
    ['1.5M', undefined],
    ['4X', undefined],
    ['-1', undefined],
    [1.5, undefined],
    ['99999999999999999999', undefined],
  ];
  for (const [text, bytes] of cases) assert.equal(parseBytes(text), bytes, JSON.stringify(text));
});

test('formatBytes: binary for messages, Docker style for progress', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536 * 1024), '1.5 MiB');
  assert.equal(formatBytes(999, 'docker'), '999B');
  assert.equal(formatBytes(1000, 'docker'), '1.0kB');
  assert.equal(formatBytes(12_300_000, 'docker'), '12.3MB');
});

test('loopback: this machine only, with or without a port', () => {
  for (const h of ['localhost', 'localhost:5000', 'registry.localhost', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(h), true, h);
  for (const h of ['example.com', '10.0.0.1:5000', '[2001:db8::1]:443', '128.0.0.1', 'localhost.example.com']) assert.equal(isLoopback(h), false, h);
});
