import { UsageError, type Command } from '../command.js';
import { commands } from './index.js';

/** Long flags a usage text mentions (`--jobs`, `--format`), for completion. */
function flagsOf(usage: string): string[] {
  return [...new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? [])].sort();
}

/** Single-quoted for bash (words here never hold a quote, but be safe). */
function words(list: string[]): string {
  return `'${list.join(' ').replace(/'/g, '')}'`;
}

/** A bash completion script for every command, its subcommands and flags, and push's source transports. */
export async function bashCompletion(): Promise<string> {
  const cases: string[] = [];
  for (const entry of commands) {
    const command = await entry.load();
    const flags = flagsOf(command.usage);
    const subs = entry.subcommands ?? [];
    const lines = [`    ${entry.name})`];
    lines.push(`      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W ${words([...flags, '--help'])} -- "$cur")); return; fi`);
    if (subs.length > 0) lines.push(`      if (( COMP_CWORD == 2 )); then COMPREPLY=($(compgen -W ${words(subs)} -- "$cur")); return; fi`);
    if (entry.name === 'push') {
      lines.push(`      case $cur in`);
      lines.push(`        oci:*|oci-archive:*|docker-archive:*) local t=\${cur%%:*}; COMPREPLY=($(compgen -f -- "\${cur#*:}" | sed "s|^|$t:|")); compopt -o nospace 2>/dev/null; return;;`);
      lines.push(`      esac`);
      lines.push(`      if (( COMP_CWORD == 2 )); then COMPREPLY=($(compgen -W 'oci: oci-archive: docker-archive: docker-daemon:' -- "$cur")); compopt -o nospace 2>/dev/null; return; fi`);
    }
    lines.push(`      COMPREPLY=($(compgen -f -- "$cur"));;`);
    cases.push(lines.join('\n'));
  }
  const names = commands.map((c) => c.name);
  return `# bash completion for pier: source <(pier completion bash)
_pier() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  COMPREPLY=()
  if (( COMP_CWORD == 1 )); then
    COMPREPLY=($(compgen -W ${words([...names, 'help', '--help', '--version'])} -- "$cur"))
    return
  fi
  case \${COMP_WORDS[1]} in
    help)
      if (( COMP_CWORD == 2 )); then COMPREPLY=($(compgen -W ${words(names)} -- "$cur")); fi;;
${cases.join('\n')}
  esac
}
complete -F _pier pier
`;
}

export const completion: Command = {
  name: 'completion',
  summary: 'Print a shell completion script (bash)',
  usage: `Usage: pier completion bash

Prints a bash completion script for pier's commands, subcommands, flags and
push sources. Load it in the current shell, or install it for every shell.`,
  async run(args, io) {
    if (args[0] !== 'bash' || args.length > 1) throw new UsageError("completion: name a shell: bash (see 'pier help completion')");
    io.stdout.write(await bashCompletion());
    return 0;
  },
};
