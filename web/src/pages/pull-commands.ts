/** Pull commands by tag and by digest for docker, podman and pier. */
import { CopyButton, html } from '../ui.js';

export function PullCommands({ name, tag, digest }: { name: string; tag: string; digest: string }) {
  const host = location.host;
  const local = name.split('/').pop() ?? name;
  const rows: [string, string][] = [
    ['docker, by tag', `docker pull ${host}/${name}:${tag}`],
    ['docker, by digest', `docker pull ${host}/${name}@${digest}`],
    ['podman, by tag', `podman pull ${host}/${name}:${tag}`],
    ['podman, by digest', `podman pull ${host}/${name}@${digest}`],
    ['pier, by tag', `pier pull ${host}/${name}:${tag} oci:${local}`],
    ['pier, by digest', `pier pull ${host}/${name}@${digest} oci:${local}`],
  ];
  return html`<ul class="commands">
    ${rows.map(([what, cmd]) => html`<li><span class="muted">${what}</span> <code>${cmd}</code> <${CopyButton} text=${cmd} label=${`Copy the ${what} pull command`} /></li>`)}
  </ul>`;
}
