#!/usr/bin/env node
// The bundled CLI (dist/bundle, built by `npm run build`; decision 0132);
// the modules tsc emitted when only tsc has run.
import { existsSync } from 'node:fs';

const bundled = new URL('../dist/bundle/main.js', import.meta.url);
const { main } = existsSync(bundled) ? await import(bundled.href) : await import('../dist/src/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
