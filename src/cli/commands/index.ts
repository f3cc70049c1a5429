// Every subcommand registers here, one line each; the modules themselves load lazily.
import { registerCommand } from '../main.js';

void registerCommand; // commands are added below as they land
registerCommand('store', 'inspect (info) and merge feature stores', () => import('./store.js').then((m) => m.default));
