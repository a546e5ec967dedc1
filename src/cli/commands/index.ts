/** Every `pier` command, in the order `pier help` lists them. */
import type { Command } from '../command.js';
import { serve } from './serve.js';

export const commands: Command[] = [serve];
