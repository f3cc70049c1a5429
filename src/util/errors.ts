// Errors a user can act on: every kvlens error names the input (file, tensor, field) and what was expected.

/** Bad input from the user's side: a file, a config field, a tensor, a CLI flag. Exit code 2 in the CLI. */
export class KvlensInputError extends Error {
  override readonly name = 'KvlensInputError';
  constructor(message: string, readonly where?: string) {
    super(where ? `${where}: ${message}` : message);
  }
}

/** Programmer misuse of the API (unknown hook name, layer out of range, shape mismatch). */
export class KvlensUsageError extends Error {
  override readonly name = 'KvlensUsageError';
}
