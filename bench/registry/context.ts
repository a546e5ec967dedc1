/**
 * What every scenario gets: options, sizes, the two running registries with a
 * client each, a scratch folder, the results, and the order of registries for
 * a round (alternating, so neither always runs first on a warm or cold cache).
 */
import type { Registry, RegistryKind } from '../lib/registries.js';
import type { RegistryClient } from '../lib/oci-client.js';
import type { Results } from '../lib/results.js';

export const MiB = 1 << 20;
export const GiB = 1 << 30;

export interface Sizes {
  readonly loadSeconds: number;
  readonly loadConnections: number;
  readonly uploadBytes: number;
  readonly uploadChunk: number;
  readonly pushes: number;
  readonly pushLayerBytes: number;
  readonly ctrLayers: number;
  readonly ctrLayerBytes: number;
  readonly growthRepos: number;
  readonly growthTags: number;
  readonly listTags: number;
  readonly listPageSize: number;
  readonly latencySamples: number;
  readonly populateMaxSeconds: number;
}

export const FULL: Sizes = {
  loadSeconds: 10,
  loadConnections: 50,
  uploadBytes: GiB,
  uploadChunk: 16 * MiB,
  pushes: 50,
  pushLayerBytes: 10 * MiB,
  ctrLayers: 4,
  ctrLayerBytes: 256 * MiB,
  growthRepos: 10_000,
  growthTags: 100_000,
  listTags: 10_000,
  listPageSize: 100,
  latencySamples: 3000,
  populateMaxSeconds: 1200,
};

export const QUICK: Sizes = {
  loadSeconds: 1,
  loadConnections: 50,
  uploadBytes: 128 * MiB,
  uploadChunk: 16 * MiB,
  pushes: 50,
  pushLayerBytes: 1 * MiB,
  ctrLayers: 4,
  ctrLayerBytes: 16 * MiB,
  growthRepos: 100,
  growthTags: 1_000,
  listTags: 500,
  listPageSize: 100,
  latencySamples: 400,
  populateMaxSeconds: 20,
};

export interface Options {
  readonly quick: boolean;
  readonly rounds: number;
  readonly only: readonly string[];
  readonly sizes: Sizes;
}

export interface Context {
  readonly options: Options;
  readonly sizes: Sizes;
  readonly results: Results;
  /** Scratch folder for this run (removed at the end). */
  readonly tmp: string;
  readonly registries: Record<RegistryKind, Registry>;
  readonly clients: Record<RegistryKind, RegistryClient>;
  log(message: string): void;
}

/** Registries in the order they run in round `round` (alternating). */
export function order(round: number): RegistryKind[] {
  return round % 2 === 0 ? ['pier', 'distribution'] : ['distribution', 'pier'];
}

export interface Scenario {
  readonly name: string;
  readonly summary: string;
  run(ctx: Context): Promise<void>;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (cause: ${err.cause.message})` : '';
    return `${err.message}${cause}`.replace(/\s+/g, ' ').slice(0, 300);
  }
  return String(err).slice(0, 300);
}
