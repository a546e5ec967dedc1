/**
 * Every `pier` command, in the order `pier help` lists them. Commands are
 * loaded only when run, so `pier push` does not pay for loading the
 * registry (Fastify, SQLite) and `pier serve` not for the client.
 */
import type { Command } from '../command.js';

export interface CommandEntry {
  name: string;
  /** One line for `pier help`; must match the command's own summary (a test checks). */
  summary: string;
  /** The subcommands, for commands that have them: the command alone lists them (and completion offers them). */
  subcommands?: string[];
  load(): Promise<Command>;
}

export const commands: CommandEntry[] = [
  { name: "serve", summary: "Run the registry", load: async () => (await import('./serve.js')).serve },
  { name: "user", summary: "Manage the registry's users (add, passwd, rm, ls, import-htpasswd)", subcommands: ['add', 'passwd', 'rm', 'ls', 'import-htpasswd', 'admin'], load: async () => (await import('./user.js')).user },
  { name: "group", summary: "Manage groups of users (add, rm, ls, join, leave)", subcommands: ['add', 'rm', 'ls', 'join', 'leave'], load: async () => (await import('./group.js')).group },
  { name: "token", summary: "Manage access tokens for CI and robots (create, ls, revoke)", subcommands: ['create', 'ls', 'revoke'], load: async () => (await import('./token.js')).token },
  { name: "policy", summary: "Grant pull, push and delete on repositories (add, ls, rm)", subcommands: ['add', 'ls', 'rm'], load: async () => (await import('./policy.js')).policy },
  { name: "audit", summary: "Show the audit log: pushes, deletes, denials, failed logins", load: async () => (await import('./audit.js')).audit },
  { name: "login", summary: "Log in to a registry", load: async () => (await import('./login.js')).login },
  { name: "logout", summary: "Log out from a registry", load: async () => (await import('./logout.js')).logout },
  { name: "push", summary: "Push an image to a registry (from a daemon, docker save tarball or OCI layout)", load: async () => (await import('./push.js')).push },
  { name: "pull", summary: "Pull an image from a registry into an OCI layout, oci-archive or docker-archive", load: async () => (await import('./pull.js')).pull },
  { name: "copy", summary: "Copy an image from one registry or repository to another, or to files", load: async () => (await import('./copy.js')).copy },
  { name: "tag", summary: "Tag an image in a registry (no blob is sent)", load: async () => (await import('./tag.js')).tag },
  { name: "tags", summary: "List a repository's tags", load: async () => (await import('./tags.js')).tags },
  { name: "sign", summary: "Sign an image with a key, in cosign's layout (the .sig tag; --bundle: a Sigstore bundle referrer)", load: async () => (await import('./sign.js')).sign },
  { name: "inspect", summary: "Show an image: manifest, config, platforms, sizes", load: async () => (await import('./inspect.js')).inspect },
  { name: "delete", summary: "Delete a tag, or a manifest by digest, from a registry", load: async () => (await import('./delete.js')).deleteCommand },
  { name: "history", summary: "Show every change of a tag (who moved it, when, from what to what)", load: async () => (await import('./history.js')).history },
  { name: "rollback", summary: "Point a tag back at an earlier version", load: async () => (await import('./rollback.js')).rollback },
  { name: "retention", summary: "Apply the retention rules now, or show what they would delete (admin)", load: async () => (await import('./retention.js')).retention },
  { name: "gc", summary: "Collect garbage on a running registry (admin)", load: async () => (await import('./gc.js')).gc },
  { name: "webhook", summary: "Send a sample event to a configured webhook (admin)", load: async () => (await import('./webhook.js')).webhook },
  { name: "migrate", summary: "Copy a registry (SQLite and files) into the stores another config names (PostgreSQL and S3)", load: async () => (await import('./migrate.js')).migrate },
  { name: "scan", summary: "Scan an image in a registry for known vulnerabilities now, and show the findings", load: async () => (await import('./scan.js')).scan },
  { name: "vulndb", summary: "Import an OSV vulnerability database into a running registry (admin), or show its state", subcommands: ['import', 'status'], load: async () => (await import('./vulndb.js')).vulndb },
  { name: "version", summary: "Print pier's version (also: pier --version, pier -v)", load: async () => (await import('./version.js')).version },
  { name: "completion", summary: "Print a shell completion script (bash)", subcommands: ['bash'], load: async () => (await import('./completion.js')).completion },
];
