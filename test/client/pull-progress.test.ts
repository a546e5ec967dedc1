/** The progress renderers speak of downloads when the events are a pull's. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRenderer, type PushEvent } from '../../src/client/index.js';

const pull: PushEvent[] = [
  { type: 'blob', id: 'aaaaaaaaaaaa', kind: 'layer', status: 'waiting', size: 45_600_000 },
  { type: 'blob', id: 'bbbbbbbbbbbb', kind: 'layer', status: 'exists' },
  { type: 'blob', id: 'aaaaaaaaaaaa', kind: 'layer', status: 'pulling', size: 45_600_000 },
  { type: 'progress', id: 'aaaaaaaaaaaa', current: 12_300_000, total: 45_600_000 },
];
const done: PushEvent[] = [
  { type: 'blob', id: 'aaaaaaaaaaaa', kind: 'layer', status: 'pulled' },
  { type: 'manifest', reference: 'reg/x/z:v1', tag: 'v1', digest: `sha256:${'e'.repeat(64)}`, size: 1234, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
  { type: 'saved', destination: 'oci:/tmp/x:v1', digest: `sha256:${'e'.repeat(64)}` },
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

test('tty: Downloading with a bar, then Pull complete and where it was saved', async () => {
  const c = capture();
  const r = createRenderer('tty', c.out);
  for (const e of pull) r.event(e);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.match(c.text(), /aaaaaaaaaaaa: Downloading \[=+> +\] 12\.3MB\/45\.6MB/);
  assert.match(c.text(), /bbbbbbbbbbbb: Layer already exists/);
  assert.doesNotMatch(c.text(), /Pushing/);
  for (const e of done) r.event(e);
  r.close();
  assert.match(c.text(), /aaaaaaaaaaaa: Pull complete/);
  assert.match(c.text(), /v1: digest: sha256:e{64} size: 1234\nSaved to oci:\/tmp\/x:v1\n$/);
});

test('plain: a line per change, like docker pull', () => {
  const c = capture();
  const r = createRenderer('plain', c.out);
  for (const e of [...pull, ...done]) r.event(e);
  r.close();
  assert.equal(
    c.text(),
    [
      'aaaaaaaaaaaa: Waiting',
      'bbbbbbbbbbbb: Layer already exists',
      'aaaaaaaaaaaa: Downloading',
      'aaaaaaaaaaaa: Pull complete',
      `v1: digest: sha256:${'e'.repeat(64)} size: 1234`,
      'Saved to oci:/tmp/x:v1',
      '',
    ].join('\n'),
  );
});
