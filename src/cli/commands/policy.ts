import { parseFlags, UsageError, type Command } from '../command.js';
import { ADMIN_FLAGS, ADMIN_USAGE, withAccounts } from './auth-common.js';

export const policy: Command = {
  name: 'policy',
  summary: 'Grant pull, push and delete on repositories (add, ls, rm)',
  usage: `Usage: pier policy add --subject SUBJECT --repositories PATTERN --actions pull,push
       pier policy ls
       pier policy rm ID

Subjects: user:NAME, group:NAME, token:NAME, authenticated (any user or
token), anonymous (everyone). Patterns: a repository name where * matches
anything, slashes included (team/*, *). Rules add up; admins may do
everything. Rules in the config file's policy list are shown with their
origin and cannot be removed here. With --registry HOST, works on a
running registry as an admin (see 'pier help user').

Options:
  --subject SUBJECT
  --repositories PATTERN
  --actions LIST      some of pull, push, delete (or *)
${ADMIN_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('policy', args, {
      ...ADMIN_FLAGS,
      subject: { type: 'string' },
      repositories: { type: 'string' },
      actions: { type: 'string' },
    });
    const [sub, arg] = positionals;
    if (sub === undefined || !['add', 'ls', 'rm'].includes(sub)) throw new UsageError(`policy: unknown subcommand ${JSON.stringify(sub ?? '')} (see 'pier help policy')`);
    if (sub === 'add' && (values.subject === undefined || values.repositories === undefined || values.actions === undefined)) {
      throw new UsageError('policy add: --subject, --repositories and --actions are required');
    }
    const id = Number(arg);
    if (sub === 'rm' && (arg === undefined || !Number.isSafeInteger(id))) throw new UsageError('policy rm: ID must be the number shown by pier policy ls');
    return withAccounts(values, io, 'policy', async (accounts) => {
      switch (sub) {
        case 'add': {
          const added = await accounts.addRule(values.subject!, values.repositories!, values.actions!.split(','));
          io.stdout.write(`added rule ${added}: ${values.subject!} may ${values.actions!} ${values.repositories!}\n`);
          return 0;
        }
        case 'ls':
          for (const r of await accounts.listRules()) io.stdout.write(`${r.origin}\t${r.subject}\t${r.repositories}\t${r.actions.join(',')}\n`);
          return 0;
        default:
          await accounts.removeRule(id);
          io.stdout.write(`removed rule ${id}\n`);
          return 0;
      }
    });
  },
};
