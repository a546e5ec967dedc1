/**
 * The examples `pier help COMMAND` prints under a command's usage, kept in
 * one table so that every command has one (a test checks each command in
 * commands/index.ts has an entry here).
 */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  serve: ['pier serve --listen 127.0.0.1:5000 --data /var/lib/pier'],
  user: ['echo "$PASSWORD" | pier user add alice --admin --registry 127.0.0.1:5000', 'pier user ls --registry registry.example.com', 'echo "$PASSWORD" | pier user add alice --admin --data /var/lib/pier'],
  group: ['pier group add devs --registry registry.example.com', 'pier group join devs alice bob --data /var/lib/pier'],
  token: ['pier token create --name ci --scope repository:team/*:pull,push --expires 30d --registry registry.example.com', 'pier token revoke ci --data /var/lib/pier'],
  policy: ['pier policy add --subject group:devs --repositories "team/*" --actions pull,push --registry registry.example.com', 'pier policy ls --data /var/lib/pier'],
  audit: ['pier audit --limit 20 --actor alice --data /var/lib/pier'],
  login: ['echo "$PASSWORD" | pier login registry.example.com -u alice --password-stdin'],
  logout: ['pier logout registry.example.com'],
  push: ['docker save app:v1 -o app.tar && pier push docker-archive:app.tar registry.example.com/team/app:v1', 'pier push oci:./layout:v1 127.0.0.1:5000/team/app:v1 --format json'],
  pull: [
    'pier pull registry.example.com/team/app:v1 oci:./app-layout',
    'pier pull --platform linux/arm64 registry.example.com/team/app:v1 oci-archive:app.tar',
    'pier pull registry.example.com/team/app:v1 docker-archive:app.tar:app:v1 && docker load -i app.tar',
  ],
  copy: ['pier copy registry.example.com/team/app:v1 registry.example.com/prod/app:v1', 'pier copy registry.example.com/team/app:v1 oci-archive:app.tar'],
  tag: ['pier tag registry.example.com/team/app:v1 stable'],
  tags: ['pier tags registry.example.com/team/app'],
  sign: ['pier sign registry.example.com/team/app:v1 --key cosign.key', 'pier sign registry.example.com/team/app@sha256:3f1c...e9 --key signer.pem --bundle'],
  scan: ['pier scan registry.example.com/team/app:v1', 'pier scan registry.example.com/team/app@sha256:3f1c...e9 --format json'],
  vulndb: ['pier vulndb import ./osv/Debian/all.zip --registry 127.0.0.1:5000', 'pier vulndb status --registry 127.0.0.1:5000'],
  inspect: ['pier inspect registry.example.com/team/app:v1 --format json'],
  delete: ['pier delete registry.example.com/team/app:old', 'pier delete registry.example.com/team/app@sha256:3f1c...e9 --force'],
  history: ['pier history registry.example.com/team/app:v1'],
  rollback: ['pier rollback registry.example.com/team/app:v1 --steps 1'],
  retention: ['pier retention 127.0.0.1:5000 --dry-run'],
  gc: ['pier gc 127.0.0.1:5000 --dry-run'],
  migrate: ['pier migrate --data /var/lib/pier --to scale-out.yaml'],
  webhook: ['pier webhook test deploys --registry 127.0.0.1:5000'],
  version: ['pier version', 'pier --version'],
  completion: ['source <(pier completion bash)', "pier completion bash > /etc/bash_completion.d/pier"],
};

/** The usage text with its examples appended (none when the table has no entry). */
export function withExamples(name: string, usage: string): string {
  const examples = EXAMPLES[name];
  if (!examples || examples.length === 0) return usage;
  return `${usage}\n\nExample${examples.length > 1 ? 's' : ''}:\n${examples.map((e) => `  ${e}`).join('\n')}`;
}
