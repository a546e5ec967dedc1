/**
 * SBOMs: the CycloneDX 1.5 JSON document Pier writes for an image, and
 * reading packages back out of SBOMs others wrote (CycloneDX or SPDX JSON
 * from syft, Trivy or BuildKit's in-toto attestations), by their package
 * URLs. The document is what a referrer of the image carries
 * (`artifactType: application/vnd.cyclonedx+json`).
 */
import { randomUUID } from 'node:crypto';
import type { ImageInventory, OsInfo, Package, PackageType } from './inventory.js';

export const CYCLONEDX_MEDIA_TYPE = 'application/vnd.cyclonedx+json';
export const SPDX_MEDIA_TYPE = 'application/spdx+json';
/** The annotation on the SBOM manifests Pier writes: which of an image's SBOM referrers are Pier's own. */
export const GENERATOR_ANNOTATION = 'dev.pier.sbom.generator';

function enc(s: string): string {
  return encodeURIComponent(s).replace(/%2F/gi, '/');
}

/** The package URL (purl spec) of a package on an OS. */
export function purlOf(pkg: Package, os: OsInfo | undefined): string {
  const distro = os ? `distro=${enc(`${os.id}-${os.versionId}`)}` : '';
  switch (pkg.type) {
    case 'deb': {
      const upstream = pkg.source && (pkg.source !== pkg.name || pkg.sourceVersion !== pkg.version) ? `upstream=${enc(pkg.sourceVersion && pkg.sourceVersion !== pkg.version ? `${pkg.source}@${pkg.sourceVersion}` : pkg.source)}` : '';
      const q = [upstream, distro].filter(Boolean).join('&');
      return `pkg:deb/${enc(os?.id ?? 'debian')}/${enc(pkg.name)}@${enc(pkg.version)}${q ? `?${q}` : ''}`;
    }
    case 'apk': {
      const upstream = pkg.source && pkg.source !== pkg.name ? `upstream=${enc(pkg.source)}` : '';
      const q = [upstream, distro].filter(Boolean).join('&');
      return `pkg:apk/${enc(os?.id ?? 'alpine')}/${enc(pkg.name)}@${enc(pkg.version)}${q ? `?${q}` : ''}`;
    }
    case 'rpm': {
      const upstream = pkg.source && pkg.source !== pkg.name ? `upstream=${enc(pkg.source)}` : '';
      const epoch = /^(\d+):/.exec(pkg.version);
      const q = [upstream, epoch ? `epoch=${epoch[1]!}` : '', distro].filter(Boolean).join('&');
      return `pkg:rpm/${enc(os?.id ?? 'redhat')}/${enc(pkg.name)}@${enc(epoch ? pkg.version.slice(epoch[0].length) : pkg.version)}${q ? `?${q}` : ''}`;
    }
    case 'npm':
      return `pkg:npm/${pkg.name.startsWith('@') ? `%40${enc(pkg.name.slice(1))}` : enc(pkg.name)}@${enc(pkg.version)}`;
    case 'pypi':
      return `pkg:pypi/${enc(pkg.name)}@${enc(pkg.version)}`;
    case 'golang':
      return `pkg:golang/${enc(pkg.name)}@${enc(pkg.version)}`;
  }
}

/** A package (and the OS its `distro` qualifier names) from a package URL; undefined for types Pier does not match. */
export function fromPurl(purl: string): { pkg: Package; os: OsInfo | undefined } | undefined {
  const m = /^pkg:([a-z]+)\/([^@?#]+)@([^?#]+)(?:\?([^#]*))?/.exec(purl);
  if (!m) return undefined;
  const type = m[1] as PackageType;
  if (!['deb', 'apk', 'rpm', 'npm', 'pypi', 'golang'].includes(type)) return undefined;
  const parts = m[2]!.split('/').map(decodeURIComponent);
  const version = decodeURIComponent(m[3]!);
  const q = new URLSearchParams(m[4] ?? '');
  const distro = q.get('distro');
  const os = distro && /^[a-z]+-/.test(distro) ? { id: distro.slice(0, distro.indexOf('-')), versionId: distro.slice(distro.indexOf('-') + 1) } : undefined;
  let name: string;
  if (type === 'deb' || type === 'apk' || type === 'rpm') name = parts[parts.length - 1]!;
  else name = parts.join('/');
  const epoch = type === 'rpm' ? q.get('epoch') : null;
  const pkg: Package = { type, name, version: epoch && epoch !== '0' ? `${epoch}:${version}` : version };
  if (type === 'rpm') {
    const up = q.get('upstream');
    if (up) pkg.source = up;
  }
  if (type === 'deb' || type === 'apk') {
    const up = q.get('upstream');
    const [src, srcVersion] = up ? (up.includes('@') ? [up.slice(0, up.indexOf('@')), up.slice(up.indexOf('@') + 1)] : [up, undefined]) : [name, undefined];
    pkg.source = src!;
    pkg.sourceVersion = srcVersion ?? version;
  }
  return { pkg, os };
}

/** The CycloneDX 1.5 BOM of an image: one component per package, with its purl. */
export function cycloneDx(inventory: ImageInventory, subject: { repository: string; digest: string }, toolVersion: string, now = new Date()): Record<string, unknown> {
  const components: Record<string, unknown>[] = [];
  if (inventory.os) components.push({ type: 'operating-system', 'bom-ref': `os:${inventory.os.id}`, name: inventory.os.id, version: inventory.os.versionId, ...(inventory.os.prettyName ? { description: inventory.os.prettyName } : {}) });
  for (const pkg of inventory.packages) {
    const purl = purlOf(pkg, inventory.os);
    const properties = pkg.source && pkg.source !== pkg.name ? [{ name: 'pier:package:source', value: pkg.source }] : [];
    components.push({ type: pkg.type === 'golang' && pkg.name === 'stdlib' ? 'framework' : 'library', 'bom-ref': purl, name: pkg.name, version: pkg.version, purl, ...(properties.length ? { properties } : {}) });
  }
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.5.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      tools: { components: [{ type: 'application', name: 'pier', version: toolVersion }] },
      component: { type: 'container', 'bom-ref': subject.digest, name: subject.repository, version: subject.digest },
    },
    components,
  };
}

/**
 * Packages from an SBOM document: CycloneDX (`components[].purl`) or SPDX
 * (`packages[].externalRefs[]` of type purl), also wrapped as an in-toto
 * statement's `predicate`. Undefined if the document is neither.
 */
export function packagesFromSbom(doc: unknown): ImageInventory | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  let d = doc as Record<string, unknown>;
  if (typeof d.predicate === 'object' && d.predicate !== null) d = d.predicate as Record<string, unknown>;
  const purls: string[] = [];
  let os: OsInfo | undefined;
  if (d.bomFormat === 'CycloneDX') {
    const walk = (list: unknown) => {
      for (const c of Array.isArray(list) ? (list as Record<string, unknown>[]) : []) {
        if (c.type === 'operating-system' && typeof c.name === 'string' && typeof c.version === 'string') os ??= { id: c.name, versionId: c.version };
        if (typeof c.purl === 'string') purls.push(c.purl);
        walk(c.components);
      }
    };
    walk(d.components);
  } else if (typeof d.spdxVersion === 'string') {
    for (const p of Array.isArray(d.packages) ? (d.packages as Record<string, unknown>[]) : []) {
      for (const r of Array.isArray(p.externalRefs) ? (p.externalRefs as Record<string, unknown>[]) : []) {
        if (r.referenceType === 'purl' && typeof r.referenceLocator === 'string') purls.push(r.referenceLocator);
      }
    }
  } else {
    return undefined;
  }
  const packages: Package[] = [];
  for (const purl of purls) {
    const parsed = fromPurl(purl);
    if (!parsed) continue;
    packages.push(parsed.pkg);
    os ??= parsed.os;
  }
  return { os, packages };
}
