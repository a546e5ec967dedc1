import { readFile } from 'node:fs/promises';
import { parseFlags, UsageError, type Command } from '../command.js';
import { ADMIN_FLAGS, ADMIN_USAGE, readNewPassword, withAccounts } from './auth-common.js';

export const user: Command = {
  name: 'user',
  summary: 'Manage the registry\'s users (add, passwd, rm, ls, import-htpasswd)',
  usage: `Usage: pier user add NAME [--admin]     (password from stdin, or prompted)
       pier user passwd NAME            (likewise; ends the user's sessions)
       pier user rm NAME                (also removes the user's tokens)
       pier user ls
       pier user import-htpasswd FILE [--update]
       pier user admin NAME true|false

With --registry HOST, works on a running registry through its admin API
(log in first with 'pier login HOST' as an admin; while a registry on
127.0.0.1 has no user yet, anyone on the machine may add the first admin).
Otherwise works on the database in a registry's data folder, which must
exist; a running registry picks the change up within a second.
import-htpasswd takes an Apache htpasswd file with bcrypt entries
(htpasswd -B, as distribution uses) and keeps the hashes.

Options:
  --admin             may do everything on every repository
  --update            import-htpasswd: replace the password of existing users
${ADMIN_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('user', args, { ...ADMIN_FLAGS, admin: { type: 'boolean' }, update: { type: 'boolean' } });
    const [sub, arg, extra] = positionals;
    const need = (what: string) => {
      if (arg === undefined) throw new UsageError(`user ${sub ?? ''}: missing ${what} (see 'pier help user')`);
      return arg;
    };
    const known = ['add', 'passwd', 'rm', 'admin', 'ls', 'import-htpasswd'];
    if (sub === undefined || !known.includes(sub)) throw new UsageError(`user: unknown subcommand ${JSON.stringify(sub ?? '')} (see 'pier help user')`);
    if (sub === 'admin' && extra !== 'true' && extra !== 'false') throw new UsageError('user admin NAME true|false');
    if (sub !== 'ls') need(sub === 'import-htpasswd' ? 'FILE' : 'NAME');
    return withAccounts(values, io, 'user', async (accounts) => {
      // Read only once the accounts are found: a wrong folder fails before asking for a password.
      const password = sub === 'add' || sub === 'passwd' ? await readNewPassword(io) : undefined;
      const htpasswd = sub === 'import-htpasswd' ? await readFile(need('FILE'), 'utf8') : undefined;
      switch (sub) {
        case 'add': {
          const name = need('NAME');
          await accounts.addUser(name, password!, values.admin === true);
          io.stdout.write(`added user ${name}${values.admin ? ' (admin)' : ''}\n`);
          return 0;
        }
        case 'passwd': {
          const name = need('NAME');
          await accounts.changePassword(name, password!);
          io.stdout.write(`changed the password of ${name}\n`);
          return 0;
        }
        case 'rm': {
          const name = need('NAME');
          await accounts.removeUser(name);
          io.stdout.write(`removed user ${name}\n`);
          return 0;
        }
        case 'admin': {
          const name = need('NAME');
          await accounts.setAdmin(name, extra === 'true');
          io.stdout.write(`${name} is ${extra === 'true' ? 'now' : 'no longer'} an admin\n`);
          return 0;
        }
        case 'ls': {
          for (const u of await accounts.listUsers()) {
            io.stdout.write(`${u.name}${u.admin ? '\tadmin' : '\t-'}\t${u.groups.join(',') || '-'}\t${u.createdAt}\n`);
          }
          return 0;
        }
        default: {
          const result = await accounts.importHtpasswd(htpasswd!, values.update === true);
          for (const s of result.skipped) io.stderr.write(`skipped ${s.user}: ${s.reason}\n`);
          io.stdout.write(`imported ${result.added.length} user(s), updated ${result.updated.length}, skipped ${result.skipped.length}\n`);
          return result.skipped.length > 0 ? 1 : 0;
        }
      }
    });
  },
};
