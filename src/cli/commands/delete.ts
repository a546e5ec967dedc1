import type { Digest, ImageReference } from '../../oci/index.js';
import { ClientError } from '../../client/errors.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference } from './client-flags.js';

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'Delete a tag, or a manifest by digest, from a registry',
  usage: `Usage: pier delete REPO:TAG
       pier delete REPO@DIGEST [--force]

REPO:TAG removes that tag only: the manifest, its other tags and any index
that lists it stay (a tag delete can be rolled back with pier rollback). A
registry that cannot delete tags (distribution 2.8) is reported, with the
by-digest command.

REPO@DIGEST deletes the manifest and every tag on it. First it lists the
tags and indexes that use it and refuses while there are any; --force
deletes anyway (on Pier, as an admin, even a manifest an index lists).

Options:
  --force             delete a manifest even though tags or indexes use it
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('delete', args, { ...connectionFlags, force: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError("delete: needs REPO:TAG or REPO@DIGEST (see 'pier help delete')");
    const ref = parseImageReference(positionals[0], 'REF', 'delete');
    const client = makeClient(io, values);
    try {
      if (!ref.digest) {
        if (values.force) throw new UsageError('delete: --force applies to REPO@DIGEST; a tag delete never removes more than the tag');
        const digest = await client.deleteTag(ref);
        io.stdout.write(`Deleted tag ${ref.toString()} (it pointed at ${digest.toString()}, which stays)\n`);
        return 0;
      }
      const target = ref as ImageReference & { digest: Digest };
      const users = await client.manifestUsers(target);
      const uses = [
        ...(users.tags.length > 0 ? [`tag${users.tags.length > 1 ? 's' : ''} ${users.tags.join(', ')}`] : []),
        ...users.indexes.map((i) => `index ${i.digest} (tag${i.tags.length > 1 ? 's' : ''} ${i.tags.join(', ')})`),
      ];
      if (uses.length > 0 && !values.force) {
        throw new ClientError(
          'ERR_IN_USE',
          `${ref.registry}/${ref.repository}@${ref.digest.toString()} is in use by ${uses.join(' and ')}; pier delete REPO:TAG removes one tag, --force deletes the manifest anyway`,
        );
      }
      await client.deleteManifest(target, { force: values.force === true });
      io.stdout.write(`Deleted: ${ref.digest.toString()}\n`);
      if (users.tags.length > 0) io.stdout.write(`Removed with it: ${uses[0]!}\n`);
      for (const i of users.indexes) io.stdout.write(`Broken: index ${i.digest} no longer has all its manifests\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
