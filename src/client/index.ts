/** The registry client library: push, pull, copy, tag, tags, inspect, delete, credentials. */
export { Client, type ClientOptions, type ClientPushOptions, type ClientPullOptions, type Inspection } from './client.js';
export { pullImage, hostPlatform, type PullOptions, type PullResult } from './pull.js';
export { isFileDestination, parseDestination, openWriter, OciLayoutWriter, DockerArchiveWriter, type DestinationSpec, type ImageWriter } from './dest/index.js';
export { Authenticator, parseChallenge, mergeScopes, type Credential, type Challenge } from './auth.js';
export { CredentialStore, authKey } from './credentials.js';
export { PierCache, defaultCacheDir } from './cache.js';
export { ClientError, TlsError, isRetryable, type ClientErrorCode, type TlsFailure } from './errors.js';
export type { PushEvent, BlobStatus, EventSink } from './events.js';
export { createRenderer, type ProgressFormat, type Renderer } from './progress.js';
export { formatBytes } from '../shared/bytes.js';
export { PushEngine, pushImage, type PushOptions, type PushResult, type PushStats, type Compression } from './push.js';
export { Registry, isLoopback, resolvesToLoopback, scope } from './registry.js';
export { deleteTag, deleteManifest, findManifestUsers, type ManifestUsers } from './delete.js';
export { createParallelGzip, gzipCodec, GzipWorkers, DEFAULT_GZIP, type GzipSettings } from './gzip.js';
export { openSource, OciLayoutSource, DockerArchiveSource, DockerDaemonSource, RegistrySource } from './sources/index.js';
export type { ImageSource } from './sources/index.js';
export { compose, retry, redirect, userAgent, sender, backoff, httpsFirst, type Handler, type Layer, type HttpRequest, type HttpResponse } from './transport.js';
export { HttpPool, type HttpPoolOptions } from './http.js';
