import { parseFlags, UsageError, type Command } from '../command.js';
import { DATA_FLAGS, DATA_USAGE, withAuthStore } from './auth-common.js';

export const audit: Command = {
  name: 'audit',
  summary: 'Show the audit log: pushes, deletes, denials, failed logins',
  usage: `Usage: pier audit [--limit N] [--actor NAME] [--repository NAME] [--json]

Newest first. One line per entry: time, actor, address, action, repository,
target, outcome.

Options:
  --limit N           entries to show (default 100)
  --actor NAME        only this user (or token:NAME)
  --repository NAME   only this repository
  --json              one JSON object per line
${DATA_USAGE}`,
  async run(args, io) {
    const { values } = parseFlags('audit', args, {
      ...DATA_FLAGS,
      limit: { type: 'string' },
      actor: { type: 'string' },
      repository: { type: 'string' },
      json: { type: 'boolean' },
    });
    const limit = values.limit === undefined ? 100 : Number(values.limit);
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new UsageError('audit: --limit must be a positive integer');
    return withAuthStore(values, io, async ({ store }) => {
      const entries = await store.list({ limit, ...(values.actor ? { actor: values.actor } : {}), ...(values.repository ? { repository: values.repository } : {}) });
      for (const e of entries) {
        if (values.json) io.stdout.write(`${JSON.stringify(e)}\n`);
        else io.stdout.write(`${e.at.toISOString()}\t${e.actor}\t${e.ip ?? '-'}\t${e.action}\t${e.repository ?? '-'}\t${e.target ?? '-'}\t${e.outcome}\n`);
      }
      return 0;
    });
  },
};
