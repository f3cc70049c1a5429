// Graceful stop on SIGTERM (scancel, a --time limit, preemption, `kubectl delete`) and SIGINT (Ctrl-C): the first
// signal asks the running command to stop at its next safe point (an AbortSignal it checks); a second one exits at
// once. Exit codes follow the shell convention, 128 + signal number: 143 after SIGTERM, 130 after SIGINT.

export const STOP_EXIT_CODES = { SIGTERM: 143, SIGINT: 130 } as const;
export type StopSignal = keyof typeof STOP_EXIT_CODES;

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
  const handler = (sig: StopSignal) => {
    if (received) {
      say(`${sig} again: exiting now (the next run resumes from the last finalised shard)`);
      process.exit(STOP_EXIT_CODES[sig]);
    }
    received = sig;
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
