/**
 * Waits for the registry's scanner: the scan of an image over /pier/v1,
 * and the SBOM referrer it writes (on by default, decision 0120), so a
 * test that counts manifests, blobs or bytes counts after it.
 */

/** The SBOM the registry generated for an image: its manifest and the blobs it links (the document, the empty config). */
export interface GeneratedSbom {
  digest: string;
  blobs: string[];
}

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** Polls the scan of `repository@digest` until it is done (or failed/skipped); returns the SBOM written, if any. */
export async function waitForSbom(url: string, repository: string, digest: string, request: Fetch = fetch, timeoutMs = 30_000): Promise<GeneratedSbom | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await request(`${url}/pier/v1/repositories/${repository}/scans/${digest}`);
    if (res.status !== 200) throw new Error(`scan of ${repository}@${digest}: ${res.status} ${await res.text()}`);
    const scan = (await res.json()) as { status: string; sbom?: string };
    if (scan.status !== 'pending') {
      if (!scan.sbom) return undefined;
      const m = await request(`${url}/v2/${repository}/manifests/${scan.sbom}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      if (m.status !== 200) throw new Error(`SBOM ${scan.sbom} of ${repository}@${digest}: ${m.status}`);
      const manifest = (await m.json()) as { config: { digest: string }; layers: { digest: string }[] };
      return { digest: scan.sbom, blobs: [manifest.config.digest, ...manifest.layers.map((l) => l.digest)] };
    }
    if (Date.now() > deadline) throw new Error(`scan of ${repository}@${digest} still pending after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
