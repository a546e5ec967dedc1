import { readFile } from 'node:fs/promises';
import { addUser, changePassword, importHtpasswd } from '../../auth/accounts.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { DATA_FLAGS, DATA_USAGE, readNewPassword, withAuthStore } from './auth-common.js';

export const user: Command = {
  name: 'user',
  summary: 'Manage the registry\'s users (add, passwd, rm, ls, import-htpasswd)',
  usage: `Usage: pier user add NAME [--admin]     (password from stdin, or prompted)
       pier user passwd NAME            (likewise; ends the user's sessions)
       pier user rm NAME                (also removes the user's tokens)
       pier user ls
       pier user import-htpasswd FILE [--update]
       pier user admin NAME true|false

Accounts live in the registry's database; a running registry picks up
changes within a second. import-htpasswd takes an Apache htpasswd file with
bcrypt entries (htpasswd -B, as distribution uses) and keeps the hashes.

Options:
  --admin             may do everything on every repository
  --update            import-htpasswd: replace the password of existing users
${DATA_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('user', args, { ...DATA_FLAGS, admin: { type: 'boolean' }, update: { type: 'boolean' } });
    const [sub, arg, extra] = positionals;
    const need = (what: string) => {
      if (arg === undefined) throw new UsageError(`user ${sub ?? ''}: missing ${what} (see 'pier help user')`);
      return arg;
    };
    return withAuthStore(values, io, async ({ store }) => {
      switch (sub) {
        case 'add': {
          const name = need('NAME');
          await addUser(store, name, await readNewPassword(io), { admin: values.admin === true });
          io.stdout.write(`added user ${name}${values.admin ? ' (admin)' : ''}\n`);
          return 0;
        }
        case 'passwd': {
          const name = need('NAME');
          await changePassword(store, name, await readNewPassword(io));
          io.stdout.write(`changed the password of ${name}\n`);
          return 0;
        }
        case 'rm': {
          const name = need('NAME');
          await store.removeUser(name);
          io.stdout.write(`removed user ${name}\n`);
          return 0;
        }
        case 'admin': {
          const name = need('NAME');
          if (extra !== 'true' && extra !== 'false') throw new UsageError('user admin NAME true|false');
          await store.setAdmin(name, extra === 'true');
          io.stdout.write(`${name} is ${extra === 'true' ? 'now' : 'no longer'} an admin\n`);
          return 0;
        }
        case 'ls': {
          for (const u of await store.listUsers()) {
            io.stdout.write(`${u.name}${u.admin ? '\tadmin' : '\t-'}\t${u.groups.join(',') || '-'}\t${u.createdAt.toISOString()}\n`);
          }
          return 0;
        }
        case 'import-htpasswd': {
          const file = need('FILE');
          const result = await importHtpasswd(store, await readFile(file, 'utf8'), { update: values.update === true });
          for (const s of result.skipped) io.stderr.write(`skipped ${s.user}: ${s.reason}\n`);
          io.stdout.write(`imported ${result.added.length} user(s), updated ${result.updated.length}, skipped ${result.skipped.length}\n`);
          return result.skipped.length > 0 ? 1 : 0;
        }
        default:
          throw new UsageError(`user: unknown subcommand ${JSON.stringify(sub ?? '')} (see 'pier help user')`);
      }
    });
  },
};
