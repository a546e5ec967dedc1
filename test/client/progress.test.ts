/** The progress renderers: docker-like TTY lines, plain lines for CI, JSON events. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRenderer, type PushEvent } from '../../src/client/index.js';

const events: PushEvent[] = [
  { type: 'blob', id: 'aaaaaaaaaaaa', kind: 'layer', status: 'preparing' },
  { type: 'blob', id: 'bbbbbbbbbbbb', kind: 'layer', status: 'preparing' },
  { type: 'blob', id: 'cccccccccccc', kind: 'layer', status: 'preparing' },
  { type: 'blob', id: 'aaaaaaaaaaaa', kind: 'layer', status: 'pushing', size: 45_600_000 },
  { type: 'progress', id: 'aaaaaaaaaaaa', current: 12_300_000, total: 45_600_000 },
  { type: 'blob', id: 'bbbbbbbbbbbb', kind: 'layer', status: 'exists' },
  { type: 'blob', id: 'cccccccccccc', kind: 'layer', status: 'mounted', from: 'x/y' },
  { type: 'blob', id: 'dddddddddddd', kind: 'config', status: 'pushed' },
];
const done: PushEvent[] = [
  { type: 'progress', id: 'aaaaaaaaaaaa', current: 45_600_000, total: 45_600_000 },
  { type: 'blob', id: 'aaaaaaaaaaaa', kind: 'layer', status: 'pushed' },
  { type: 'manifest', reference: 'reg/x/z:v1', tag: 'v1', digest: `sha256:${'e'.repeat(64)}`, size: 1234, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
];

function capture(): { out: { write(s: string): boolean; columns: number }; text(): string } {
  let buf = '';
  return {
    out: {
      columns: 120,
      write(s: string) {
        buf += s;
        return true;
      },
    },
    text: () => buf,
  };
}

describe('progress', () => {
  test('tty: one line per blob, redrawn in place, like docker', async () => {
    const c = capture();
    const r = createRenderer('tty', c.out);
    for (const e of events) r.event(e);
    await new Promise((res) => setTimeout(res, 150));
    const mid = c.text();
    assert.match(mid, /aaaaaaaaaaaa: Pushing \[=+> +\] 12\.3MB\/45\.6MB/);
    assert.match(mid, /bbbbbbbbbbbb: Layer already exists/);
    assert.match(mid, /cccccccccccc: Mounted from x\/y/);
    assert.match(mid, /dddddddddddd: Pushed/, 'the config is a line too, ending in Pushed');
    for (const e of done) r.event(e);
    r.close();
    const text = c.text();
    assert.ok(text.includes('\u001b[4A'), 'redraws in place');
    assert.match(text, /aaaaaaaaaaaa: Pushed/);
    assert.match(text, new RegExp(`v1: digest: sha256:e{64} size: 1234\\n$`));
  });

  test('plain: a line per state change', () => {
    const c = capture();
    const r = createRenderer('plain', c.out);
    for (const e of [...events, ...done]) r.event(e);
    r.close();
    assert.deepEqual(c.text().trim().split('\n'), [
      'aaaaaaaaaaaa: Preparing',
      'bbbbbbbbbbbb: Preparing',
      'cccccccccccc: Preparing',
      'aaaaaaaaaaaa: Pushing',
      'bbbbbbbbbbbb: Layer already exists',
      'cccccccccccc: Mounted from x/y',
      'dddddddddddd: Pushed',
      'aaaaaaaaaaaa: Pushed',
      `v1: digest: sha256:${'e'.repeat(64)} size: 1234`,
    ]);
  });

  test('json: one event per line', () => {
    const c = capture();
    const r = createRenderer('json', c.out);
    for (const e of [...events, ...done]) r.event(e);
    const lines = c.text().trim().split('\n').map((l) => JSON.parse(l) as PushEvent);
    assert.equal(lines.at(-1)?.type, 'manifest');
    assert.ok(lines.some((e) => e.type === 'blob' && e.status === 'mounted'));
  });
});
