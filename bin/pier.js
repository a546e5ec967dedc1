#!/usr/bin/env node
// The bundled CLI (dist/bundle, built by `npm run build`; decision 0132), or
// the modules tsc emitted when there is no bundle or tsc has run since it was
// built (it would be stale).
import { statSync } from 'node:fs';

const bundled = statSync(new URL('../dist/bundle/main.js', import.meta.url), { throwIfNoEntry: false });
const compiled = statSync(new URL('../dist/src/cli/main.js', import.meta.url), { throwIfNoEntry: false });
const { main } = bundled && (!compiled || bundled.mtimeMs >= compiled.mtimeMs) ? await import('../dist/bundle/main.js') : await import('../dist/src/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
