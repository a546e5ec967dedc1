import { parseFlags, UsageError, type Command } from '../command.js';
import { DATA_FLAGS, DATA_USAGE, withAuthStore } from './auth-common.js';

export const group: Command = {
  name: 'group',
  summary: 'Manage groups of users (add, rm, ls, join, leave)',
  usage: `Usage: pier group add NAME
       pier group rm NAME
       pier group ls
       pier group join NAME USER...
       pier group leave NAME USER...

Policy rules can grant to group:NAME (see 'pier help policy').

Options:
${DATA_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('group', args, DATA_FLAGS);
    const [sub, name, ...users] = positionals;
    if (name === undefined && sub !== 'ls') throw new UsageError(`group ${sub ?? ''}: missing NAME (see 'pier help group')`);
    return withAuthStore(values, io, async ({ store }) => {
      switch (sub) {
        case 'add':
          await store.addGroup(name!);
          io.stdout.write(`added group ${name!}\n`);
          return 0;
        case 'rm':
          await store.removeGroup(name!);
          io.stdout.write(`removed group ${name!}\n`);
          return 0;
        case 'ls':
          for (const g of await store.listGroups()) io.stdout.write(`${g.name}\t${g.members.join(',') || '-'}\n`);
          return 0;
        case 'join':
        case 'leave':
          if (users.length === 0) throw new UsageError(`group ${sub}: name at least one USER`);
          for (const u of users) {
            if (sub === 'join') await store.addMember(name!, u);
            else await store.removeMember(name!, u);
          }
          io.stdout.write(`${sub === 'join' ? 'added' : 'removed'} ${users.join(', ')} ${sub === 'join' ? 'to' : 'from'} ${name!}\n`);
          return 0;
        default:
          throw new UsageError(`group: unknown subcommand ${JSON.stringify(sub ?? '')} (see 'pier help group')`);
      }
    });
  },
};
