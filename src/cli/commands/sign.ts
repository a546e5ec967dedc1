import { readFile } from 'node:fs/promises';
import { signingKey } from '../../client/index.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference } from './client-flags.js';

export const sign: Command = {
  name: 'sign',
  summary: "Sign an image with a key, in cosign's layout (the .sig tag; --bundle: a Sigstore bundle referrer)",
  usage: `Usage: pier sign REF --key KEY.pem

Signs the manifest REF names (a tag is resolved to its digest) and writes the
signature as cosign does: a simple-signing payload in the tag
sha256-<hex>.sig of REF's repository. A registry's trust policy, or
\`cosign verify --key\`, verifies it with the public key.

Options:
  --key FILE          PEM private key (unencrypted PKCS #8, SEC 1 or PKCS #1): ECDSA P-256, Ed25519 or RSA
  --bundle            also attach a Sigstore bundle (DSSE, in-toto statement) as an OCI 1.1 referrer
  --format text|json  json prints the digests written as one document
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('sign', args, { key: { type: 'string' }, bundle: { type: 'boolean' }, format: { type: 'string' }, ...connectionFlags });
    if (positionals.length !== 1) throw new UsageError("sign: needs REF (see 'pier help sign')");
    if (values.key === undefined) throw new UsageError("sign: needs --key KEY.pem (see 'pier help sign')");
    const ref = parseImageReference(positionals[0], 'REF', 'sign');
    let pem: string;
    try {
      pem = await readFile(values.key, 'utf8');
    } catch (err) {
      throw new UsageError(`sign: cannot read --key ${values.key}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const key = signingKey(pem, values.key);
    const client = makeClient(io, values);
    try {
      const r = await client.sign(ref, key, { bundle: values.bundle === true });
      if (values.format === 'json') {
        io.stdout.write(`${JSON.stringify({ digest: r.digest.toString(), signatureTag: r.signatureTag, signatureManifest: r.signatureManifest.toString(), ...(r.bundleManifest ? { bundleManifest: r.bundleManifest.toString() } : {}) })}\n`);
        return 0;
      }
      io.stdout.write(`signed ${ref.registry}/${ref.repository}@${r.digest.toString()}\n  signature: ${ref.registry}/${ref.repository}:${r.signatureTag} (${r.signatureManifest.toString()})\n`);
      if (r.bundleManifest) io.stdout.write(`  bundle:    ${ref.registry}/${ref.repository}@${r.bundleManifest.toString()} (referrer)\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
