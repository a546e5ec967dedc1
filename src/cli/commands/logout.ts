import { CredentialStore } from '../../client/index.js';
import { UsageError, parseFlags, type Command } from '../command.js';
import { registryArgument } from './client-flags.js';

export const logout: Command = {
  name: 'logout',
  summary: 'Log out from a registry',
  usage: `Usage: pier logout [REGISTRY]

Removes the stored credentials of REGISTRY (default docker.io) from
~/.docker/config.json or its credential helper.`,
  async run(args, io) {
    const { positionals } = parseFlags('logout', args, {});
    if (positionals.length > 1) throw new UsageError("logout: takes one REGISTRY (see 'pier help logout')");
    const { registry } = registryArgument(positionals[0]);
    const removed = await new CredentialStore({ env: io.env }).erase(registry);
    io.stdout.write(removed ? `Removing login credentials for ${registry}\n` : `Not logged in to ${registry}\n`);
    return 0;
  },
};
