/**
 * Debian's chromium driven by playwright-core (headless, no sandbox: tests
 * run as root), and helpers the UI tests share: where screenshots go, and
 * every control on a page without an accessible name, as the browser's
 * own accessibility tree (an ARIA snapshot) reports it.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/registry.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Screenshots (not committed: .tmp/ is ignored). */
export const ARTIFACTS = path.join(REPO_ROOT, '.tmp', 'ui-artifacts');

export async function launchBrowser(): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

const CONTROLS = ['button', 'link', 'textbox', 'searchbox', 'checkbox', 'combobox', 'radio', 'slider', 'spinbutton', 'switch', 'tab', 'menuitem'];

/** Lines of the page's ARIA snapshot naming a control with no accessible name (`- button` instead of `- button "Sign in"`). */
export async function unnamedControls(page: Page): Promise<string[]> {
  const snapshot = await page.locator('body').ariaSnapshot();
  const pattern = new RegExp(`^\\s*- (${CONTROLS.join('|')})(\\s*\\[[^\\]]*\\])*\\s*:?\\s*$`);
  return snapshot.split('\n').filter((line) => pattern.test(line));
}

/** Both colour schemes of the page as it stands, as PNGs named after `name`. */
export async function screenshots(page: Page, name: string): Promise<void> {
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${colorScheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}
