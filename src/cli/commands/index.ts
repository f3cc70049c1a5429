// Every subcommand registers here, one line each; the modules themselves load lazily.
import { registerCommand } from '../registry.js';

void registerCommand; // commands are added below as they land
registerCommand('store', 'inspect (info) and merge feature stores', () => import('./store.js').then((m) => m.default));
registerCommand('parity', 'recompute a reference fixture set with kvlens and compare every tensor', () => import('./parity.js').then((m) => m.default));
registerCommand('data', 'check a dataset layout (data check) or write a synthetic one (data synth)', () => import('./data.js').then((m) => m.default));
registerCommand('report', 'render a run directory into a self-contained HTML report (+ SVG/PNG plots)', () => import('./report.js').then((m) => m.default));
registerCommand('view', 'browse a feature store or run directory in a local web page (layers, PCA, matches)', () => import('./view.js').then((m) => m.default));
registerCommand('extract', 'stream image-token taps (values, keys, ...) of a model over images into a feature store', () => import('./extract.js').then((m) => m.default));
registerCommand('probe', 'run one of the six probes (fewshot-seg, coseg, semseg, refseg, correspondence, propagation) over every layer of a store', () => import('./probe.js').then((m) => m.default));
registerCommand('demo', 'every experiment on the embedded tiny model and synthetic data, ending with the report (--family, --flow-only)', () => import('./demo.js').then((m) => m.default));
registerCommand('run', 'run one of the paper experiments from a YAML file (flow, keys, blocking, prefix, underutil) into a run dir with a manifest', () => import('./run.js').then((m) => m.default));
