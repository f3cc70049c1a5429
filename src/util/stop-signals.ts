// Graceful stop on SIGTERM (scancel, a --time limit, preemption, `kubectl delete`) and SIGINT (Ctrl-C): the first
// signal asks the running command to stop at its next safe point (an AbortSignal it checks); a second one, at least
// 2 s later, exits at once. (Repeats within 2 s are one request: Slurm signals every process of a job and bin/kvlens.js
// forwards signals to its re-executed child, so one scancel or Ctrl-C arrives twice.) Exit codes follow the shell
// convention, 128 + signal number: 143 after SIGTERM, 130 after SIGINT.

export const STOP_EXIT_CODES = { SIGTERM: 143, SIGINT: 130 } as const;
export type StopSignal = keyof typeof STOP_EXIT_CODES;

const REPEAT_MS = 2000;

export interface StopHandle {
  readonly signal: AbortSignal;
  /** The signal received, once one was. */
  readonly received: () => StopSignal | undefined;
  /** Remove the handlers (call when the command ends). */
  readonly dispose: () => void;
}

export function onStopSignals(say: (message: string) => void = (m) => console.error(m)): StopHandle {
  const controller = new AbortController();
  let received: StopSignal | undefined;
  let at = 0;
  const handler = (sig: StopSignal) => {
    if (received && Date.now() - at < REPEAT_MS) return;
    if (received) {
      say(`${sig} again: exiting now (the next run resumes from the last finalised shard)`);
      process.exit(STOP_EXIT_CODES[sig]);
    }
    received = sig;
    at = Date.now();
    say(`${sig} received: stopping at the next image boundary (send it again to exit at once)`);
    controller.abort(sig);
  };
  const onTerm = () => handler('SIGTERM');
  const onInt = () => handler('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return {
    signal: controller.signal,
    received: () => received,
    dispose: () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}
