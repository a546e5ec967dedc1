import { createAccessToken, parseDuration } from '../../auth/accounts.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { DATA_FLAGS, DATA_USAGE, withAuthStore } from './auth-common.js';

export const token: Command = {
  name: 'token',
  summary: 'Manage access tokens for CI and robots (create, ls, revoke)',
  usage: `Usage: pier token create --name NAME --scope SCOPE... [--expires 30d] [--user USER]
       pier token ls
       pier token revoke NAME

An access token is used as a password (with any user name):
  echo "$TOKEN" | skopeo login --password-stdin -u ci REGISTRY
It is printed once, at creation; only its hash is stored.

Options:
  --name NAME         a name to list and revoke it by (token:NAME in policy rules)
  --scope SCOPE       repository:PATTERN:ACTIONS, e.g. repository:team/app:push,pull
                      or repository:team/*:pull (repeatable)
  --expires DURATION  lifetime, such as 12h, 30d or 2w (default: never)
  --user USER         the token never exceeds this user's rights, and goes with the user
${DATA_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('token', args, {
      ...DATA_FLAGS,
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      expires: { type: 'string' },
      user: { type: 'string' },
    });
    const [sub, arg] = positionals;
    return withAuthStore(values, io, async ({ store }) => {
      switch (sub) {
        case 'create': {
          const name = values.name ?? arg;
          if (name === undefined) throw new UsageError('token create: --name is required');
          const { secret, expiresAt } = await createAccessToken(store, {
            name,
            scopes: values.scope ?? [],
            expiresIn: values.expires === undefined ? undefined : parseDuration(values.expires),
            owner: values.user,
          });
          io.stderr.write(`created token ${name}${expiresAt ? `, expires ${expiresAt.toISOString()}` : ''}; it is shown only now:\n`);
          io.stdout.write(`${secret}\n`);
          return 0;
        }
        case 'ls': {
          const now = Date.now();
          for (const t of await store.listTokens()) {
            const state = t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : t.expiresAt && t.expiresAt.getTime() <= now ? 'expired' : 'live';
            io.stdout.write(
              `${t.name}\t${state}\t${t.scopes.join(' ')}\t${t.owner ?? '-'}\tcreated ${t.createdAt.toISOString()}\texpires ${t.expiresAt?.toISOString() ?? 'never'}\n`,
            );
          }
          return 0;
        }
        case 'revoke': {
          if (arg === undefined) throw new UsageError('token revoke: missing NAME');
          await store.revokeToken(arg);
          io.stdout.write(`revoked token ${arg}\n`);
          return 0;
        }
        default:
          throw new UsageError(`token: unknown subcommand ${JSON.stringify(sub ?? '')} (see 'pier help token')`);
      }
    });
  },
};
