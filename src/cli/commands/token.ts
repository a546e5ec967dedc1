import { parseDuration } from '../../auth/accounts.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { ADMIN_FLAGS, ADMIN_USAGE, withAccounts } from './auth-common.js';

export const token: Command = {
  name: 'token',
  summary: 'Manage access tokens for CI and robots (create, ls, revoke)',
  usage: `Usage: pier token create --name NAME --scope SCOPE... [--expires 30d] [--user USER]
       pier token ls
       pier token revoke NAME

An access token is used as a password (with any user name):
  echo "$TOKEN" | skopeo login --password-stdin -u ci REGISTRY
It is printed once, at creation; only its hash is stored. With --registry
HOST, works on a running registry as an admin (see 'pier help user').

Options:
  --name NAME         a name to list and revoke it by (token:NAME in policy rules)
  --scope SCOPE       repository:PATTERN:ACTIONS, e.g. repository:team/app:push,pull
                      or repository:team/*:pull (repeatable)
  --expires DURATION  lifetime, such as 12h, 30d or 2w (default: never)
  --user USER         the token never exceeds this user's rights, and goes with the user
${ADMIN_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('token', args, {
      ...ADMIN_FLAGS,
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      expires: { type: 'string' },
      user: { type: 'string' },
    });
    const [sub, arg] = positionals;
    if (sub === undefined || !['create', 'ls', 'revoke'].includes(sub)) throw new UsageError(`token: unknown subcommand ${JSON.stringify(sub ?? '')} (see 'pier help token')`);
    const name = values.name ?? arg;
    if (sub === 'create' && name === undefined) throw new UsageError('token create: --name is required');
    if (sub === 'revoke' && arg === undefined) throw new UsageError('token revoke: missing NAME');
    const expiresIn = sub === 'create' && values.expires !== undefined ? parseDuration(values.expires) : undefined;
    return withAccounts(values, io, 'token', async (accounts) => {
      switch (sub) {
        case 'create': {
          const created = await accounts.createToken({ name: name!, scopes: values.scope ?? [], expiresIn, owner: values.user });
          io.stderr.write(`created token ${name!}${created.expiresAt ? `, expires ${created.expiresAt}` : ''}; it is shown only now:\n`);
          io.stdout.write(`${created.secret}\n`);
          return 0;
        }
        case 'ls': {
          const now = Date.now();
          for (const t of await accounts.listTokens()) {
            const state = t.revokedAt ? `revoked ${t.revokedAt}` : t.expiresAt && Date.parse(t.expiresAt) <= now ? 'expired' : 'live';
            io.stdout.write(`${t.name}\t${state}\t${t.scopes.join(' ')}\t${t.owner ?? '-'}\tcreated ${t.createdAt}\texpires ${t.expiresAt ?? 'never'}\n`);
          }
          return 0;
        }
        default:
          await accounts.revokeToken(arg!);
          io.stdout.write(`revoked token ${arg!}\n`);
          return 0;
      }
    });
  },
};
