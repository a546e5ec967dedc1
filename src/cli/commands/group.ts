import { parseFlags, UsageError, type Command } from '../command.js';
import { ADMIN_FLAGS, ADMIN_USAGE, withAccounts } from './auth-common.js';

export const group: Command = {
  name: 'group',
  summary: 'Manage groups of users (add, rm, ls, join, leave)',
  usage: `Usage: pier group add NAME
       pier group rm NAME
       pier group ls
       pier group join NAME USER...
       pier group leave NAME USER...

Policy rules can grant to group:NAME (see 'pier help policy'). With
--registry HOST, works on a running registry as an admin (see 'pier help user').

Options:
${ADMIN_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('group', args, ADMIN_FLAGS);
    const [sub, name, ...users] = positionals;
    if (sub === undefined || !['add', 'rm', 'ls', 'join', 'leave'].includes(sub)) throw new UsageError(`group: unknown subcommand ${JSON.stringify(sub ?? '')} (see 'pier help group')`);
    if (name === undefined && sub !== 'ls') throw new UsageError(`group ${sub}: missing NAME (see 'pier help group')`);
    if ((sub === 'join' || sub === 'leave') && users.length === 0) throw new UsageError(`group ${sub}: name at least one USER`);
    return withAccounts(values, io, 'group', async (accounts) => {
      switch (sub) {
        case 'add':
          await accounts.addGroup(name!);
          io.stdout.write(`added group ${name!}\n`);
          return 0;
        case 'rm':
          await accounts.removeGroup(name!);
          io.stdout.write(`removed group ${name!}\n`);
          return 0;
        case 'ls':
          for (const g of await accounts.listGroups()) io.stdout.write(`${g.name}\t${g.members.join(',') || '-'}\n`);
          return 0;
        default:
          for (const u of users) {
            if (sub === 'join') await accounts.addMember(name!, u);
            else await accounts.removeMember(name!, u);
          }
          io.stdout.write(`${sub === 'join' ? 'added' : 'removed'} ${users.join(', ')} ${sub === 'join' ? 'to' : 'from'} ${name!}\n`);
          return 0;
      }
    });
  },
};
