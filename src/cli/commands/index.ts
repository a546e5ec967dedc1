/** Every `pier` command, in the order `pier help` lists them. */
import type { Command } from '../command.js';
import { serve } from './serve.js';
import { user } from './user.js';
import { group } from './group.js';
import { token } from './token.js';
import { policy } from './policy.js';
import { audit } from './audit.js';
import { login } from './login.js';
import { logout } from './logout.js';
import { push } from './push.js';
import { copy } from './copy.js';
import { tag } from './tag.js';
import { tags } from './tags.js';
import { inspect } from './inspect.js';
import { deleteCommand } from './delete.js';
import { history } from './history.js';
import { rollback } from './rollback.js';
import { retention } from './retention.js';
import { gc } from './gc.js';
import { webhook } from './webhook.js';

export const commands: Command[] = [
  serve,
  user,
  group,
  token,
  policy,
  audit,
  login,
  logout,
  push,
  copy,
  tag,
  tags,
  inspect,
  deleteCommand,
  history,
  rollback,
  retention,
  gc,
  webhook,
];
