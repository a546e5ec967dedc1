import type { Registry } from '../../client/index.js';
import { UsageError, parseFlags, type Command, type Io } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, registryArgument } from './client-flags.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a line from the TTY; with `hidden`, nothing is echoed. */
async function prompt(io: Io, question: string, hidden: boolean): Promise<string> {
  const stdin = io.stdin as NodeJS.ReadStream;
  io.stderr.write(question);
  if (hidden && typeof stdin.setRawMode === 'function') stdin.setRawMode(true);
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          done();
          // In raw mode the Enter was not echoed.
          if (hidden) io.stderr.write('\n');
          return resolve(value);
        }
        if (ch === '\u0003') {
          done();
          if (hidden) io.stderr.write('\n');
          return reject(new UsageError('login: cancelled', 130));
        }
        // Not hidden: the terminal (cooked mode) echoes and edits the line itself.
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      if (hidden && typeof stdin.setRawMode === 'function') stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

export const login: Command = {
  name: 'login',
  summary: 'Log in to a registry',
  usage: `Usage: pier login [REGISTRY] [-u USER] [--password-stdin]

Checks the credentials against REGISTRY (default docker.io) and stores them
where docker does: a credential helper (credHelpers/credsStore in
~/.docker/config.json, DOCKER_CONFIG honoured) or base64 in config.json.

Options:
  -u, --username USER   user name (prompted on a TTY when missing)
  -p, --password PASS   password (insecure: it shows in the process list; prefer --password-stdin)
  --password-stdin      read the password from stdin
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('login', args, {
      username: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      'password-stdin': { type: 'boolean' },
      ...connectionFlags,
    });
    if (positionals.length > 1) throw new UsageError("login: takes one REGISTRY (see 'pier help login')");
    const target = registryArgument(positionals[0]);
    let username = values.username;
    let password = values.password;
    if (values['password-stdin']) {
      if (password !== undefined) throw new UsageError('login: --password and --password-stdin are exclusive');
      if (!username) throw new UsageError('login: --password-stdin needs --username');
      password = (await readAll(io.stdin)).replace(/\r?\n$/, '');
    }
    if (!username) {
      if (!io.stdin.isTTY) throw new UsageError('login: --username is required when stdin is not a terminal');
      username = (await prompt(io, 'Username: ', false)).trim();
    }
    if (password === undefined) {
      if (!io.stdin.isTTY) throw new UsageError('login: give the password with --password-stdin when stdin is not a terminal');
      password = await prompt(io, 'Password: ', true);
    } else if (values.password !== undefined) {
      io.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    if (!username || !password) throw new UsageError('login: username and password must not be empty');
    const client = makeClient(io, values, { credential: { username, password } });
    try {
      const reg: Registry = client.registry(target);
      await reg.ping();
      const stored = await client.credentials.store(target.registry, { username, password });
      if (stored.unencrypted) {
        io.stderr.write(`WARNING! Your password will be stored unencrypted in ${stored.where}.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/engine/reference/commandline/login/#credential-stores\n\n`);
      }
      io.stdout.write('Login Succeeded\n');
      return 0;
    } finally {
      await client.close();
    }
  },
};
