// glibc malloc settings for a forward pass that allocates the same large transient buffers again and again.
//
// Why: with one ORT session per decoder layer and no ORT arena, every activation buffer is a malloc/free pair. glibc
// serves blocks above its mmap threshold (dynamic: starts at 128 KiB, grows up to 32 MiB) with fresh mmaps and
// returns heap tops above its trim threshold to the kernel, so each layer of each chunk of each image touched tens of
// megabytes of freshly mapped memory: 1-1.6 million page faults per LLaVA-OV-0.5B prefill. On the VMs we measured,
// touching fresh pages runs at ~80 MiB/s (a 64 MiB buffer allocated and touched 20 times: 11-17 s; reused: 0.9 s), so
// that was most of the prefill. Fixing the mmap threshold at its maximum (32 MiB) and raising the trim threshold keeps
// freed blocks in the heap for the next layer: a warm prefill takes ~1,000 faults instead. The model code keeps
// transient buffers under 32 MiB (vision attention without a score matrix, LM query chunks sized to the key count).
//
// glibc reads these only at process start (GLIBC_TUNABLES), so the CLI re-executes itself once with them set
// (bin/kvlens.js), the bench starts its measuring child with them, and a library user sets them on the command line:
//   GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456 node script.js
// Other C libraries ignore the variable (nothing changes there).

/** The tunables kvlens wants: fixed 32 MiB mmap threshold (glibc's maximum), 256 MiB trim threshold. */
export const MALLOC_TUNABLES: Readonly<Record<string, string>> = {
  'glibc.malloc.mmap_threshold': String(32 * 2 ** 20),
  'glibc.malloc.trim_threshold': String(256 * 2 ** 20),
};

/** Parse a GLIBC_TUNABLES value ("a=1:b=2") into its entries (in order). */
function parseTunables(value: string | undefined): Array<[string, string]> {
  if (!value) return [];
  return value.split(':').filter(Boolean).map((kv) => {
    const i = kv.indexOf('=');
    return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
  });
}

/** GLIBC_TUNABLES with kvlens's malloc settings added; settings the caller already made win. */
export function tunedGlibcTunables(current: string | undefined): string {
  const entries = parseTunables(current);
  const have = new Set(entries.map(([k]) => k));
  for (const [k, v] of Object.entries(MALLOC_TUNABLES)) if (!have.has(k)) entries.push([k, v]);
  return entries.map(([k, v]) => `${k}=${v}`).join(':');
}

/** True when every kvlens malloc tunable is set (by us or by the user) in this environment. */
export function mallocTuned(env: NodeJS.ProcessEnv = process.env): boolean {
  const have = new Set(parseTunables(env.GLIBC_TUNABLES).map(([k]) => k));
  return Object.keys(MALLOC_TUNABLES).every((k) => have.has(k));
}

/** A copy of `env` with the malloc tunables added (for starting a child process). */
export function withMallocTunables(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, GLIBC_TUNABLES: tunedGlibcTunables(env.GLIBC_TUNABLES) };
}

/**
 * Whether a launcher should re-execute itself with the tunables: on Linux, when they are missing and the user has
 * not opted out with KVLENS_NO_MALLOC_TUNING=1 (the re-exec costs one Node start, ~50 ms).
 */
export function shouldReexecForMalloc(env: NodeJS.ProcessEnv = process.env, platform: string = process.platform): boolean {
  return platform === 'linux' && !mallocTuned(env) && env.KVLENS_NO_MALLOC_TUNING !== '1';
}
