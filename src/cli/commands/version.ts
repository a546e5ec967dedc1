import { readFile } from 'node:fs/promises';
import { UsageError, type Command } from '../command.js';

/** The version in package.json, read next to the built code. */
export async function pierVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
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
