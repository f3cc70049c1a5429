// Worker side of parseYamlGuarded (util/guarded-yaml.ts): parses the text with the `yaml` package, posts the value
// or the parser's message on the port, then wakes the waiting thread through the shared flag.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { parse } from 'yaml';

const { text, flag, port } = workerData as { text: string; flag: Int32Array; port: MessagePort };
// 2 = loaded: the waiting thread starts the PARSER_MS budget now (start-up on a busy machine is not counted).
Atomics.store(flag, 0, 2);
Atomics.notify(flag, 0);
try {
  port.postMessage({ ok: true, value: parse(text) });
} catch (e) {
  port.postMessage({ ok: false, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
} finally {
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}
void parentPort;
