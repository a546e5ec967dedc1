import { packageVersion } from '../../shared/package-root.js';
import { UsageError, type Command } from '../command.js';

/** The version in Pier's package.json. */
export async function pierVersion(): Promise<string> {
  return packageVersion();
}

export const version: Command = {
  name: 'version',
  summary: "Print pier's version (also: pier --version, pier -v)",
  usage: `Usage: pier version
       pier --version | -v

Prints 'pier VERSION' on stdout.`,
  async run(args, io) {
    if (args.length > 0) throw new UsageError("version: takes no arguments (see 'pier help version')");
    io.stdout.write(`pier ${await pierVersion()}\n`);
    return 0;
  },
};
