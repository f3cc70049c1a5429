// A real Slurm (Debian's slurm-wlm + munge; .ci/run installs them): a single-node cluster with its own config in a temp
// directory runs the README's scripts (examples/slurm/*.sbatch): an array extract of three tasks plus an afterok merge.
// One task is requeued mid-run (Slurm sends it SIGTERM, as scancel, a --time limit or preemption would; it stops at an
// image boundary with exit 143 and runs again); the merged store must be byte-identical to one unsharded run. The
// daemons are started here in the foreground and stopped by PID. Where they are not installed or cannot start, the test
// says why and skips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { tinyModel, writeImages } from '../extract/helpers.js';
import { storeFiles } from './store-files.js';

const BINARIES = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'scontrol', 'sinfo'];
const N = 24; // 8 images per task
const t0 = Date.now();
const say = (m: string) => console.error(`slurm [${((Date.now() - t0) / 1000).toFixed(1)} s]: ${m}`);

function which(bin: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Cluster {
  readonly daemons: Array<{ name: string; child: ChildProcess }> = [];
  readonly env: NodeJS.ProcessEnv;
  constructor(readonly dir: string) {
    this.env = { ...process.env, SLURM_CONF: join(dir, 'slurm.conf') };
  }

  /** Run a Slurm client command; returns stdout, throws with stderr on failure. */
  cmd(bin: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): string {
    const r = spawnSync(bin, args, { env: { ...this.env, ...extraEnv }, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.error?.message}`);
    return r.stdout;
  }

  start(name: string, bin: string, args: string[]): void {
    const child = spawn(bin, args, { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    child.on('exit', (code, sig) => { if (!this.stopping) say(`${name} (pid ${child.pid}) exited ${code ?? sig}: ${err.trim().split('\n').slice(-3).join(' | ')}`); });
    this.daemons.push({ name, child });
    say(`started ${name} (pid ${child.pid})`);
  }

  private stopping = false;

  /** Stop every daemon by its PID: SIGTERM, then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const { name, child } of [...this.daemons].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
      say(`stopped ${name} (pid ${child.pid})`);
    }
  }

  jobState(id: string): string {
    const out = this.cmd('scontrol', ['show', 'job', id]);
    return /JobState=(\S+)/.exec(out)?.[1] ?? 'UNKNOWN';
  }

  log(name: string): string {
    const p = join(this.dir, 'log', name);
    return existsSync(p) ? readFileSync(p, 'utf8').trim().split('\n').slice(-8).join('\n') : '(no log)';
  }
}

async function startCluster(dir: string): Promise<{ cluster: Cluster } | { skip: string; cluster?: Cluster }> {
  const missing = BINARIES.filter((b) => !which(b));
  if (missing.length) return { skip: `Slurm/munge not installed (missing ${missing.join(', ')}); .ci/run installs Debian's slurm-wlm and munge` };
  const user = userInfo().username;
  const host = hostname().split('.')[0];
  for (const sub of ['munge', 'state', 'spool', 'log']) mkdirSync(join(dir, sub), { recursive: true });
  chmodSync(join(dir, 'munge'), 0o700);
  writeFileSync(join(dir, 'munge', 'munge.key'), randomBytes(1024), { mode: 0o400 });
  const socket = join(dir, 'munge', 'munge.socket');
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const cpus = 2;
  writeFileSync(join(dir, 'slurm.conf'), [
    'ClusterName=kvlenstest',
    `SlurmctldHost=${host}(127.0.0.1)`,
    `SlurmctldPort=${ctldPort}`, `SlurmdPort=${dPort}`,
    `SlurmUser=${user}`, `SlurmdUser=${user}`,
    'AuthType=auth/munge', `AuthInfo=socket=${socket}`, 'CredType=cred/munge',
    `StateSaveLocation=${join(dir, 'state')}`, `SlurmdSpoolDir=${join(dir, 'spool')}`,
    `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`, `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`, `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
    // linuxproc: the process tracking under which npx escaped scancel; kvlens runs as plain node here.
    'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SwitchType=switch/none', 'MpiDefault=none',
    'SelectType=select/cons_tres', 'SelectTypeParameters=CR_CPU', 'SchedulerType=sched/builtin',
    'AccountingStorageType=accounting_storage/none', 'JobCompType=jobcomp/none', 'JobAcctGatherType=jobacct_gather/none',
    'ReturnToService=2', 'SlurmdParameters=config_overrides', 'KillWait=10', 'MinJobAge=600',
    // Schedule every second (default 60 s): the requeued task and the dependent merge start without minutes of idling.
    'SchedulerParameters=sched_interval=1,sched_min_interval=100000',
    `NodeName=kvlens1 NodeHostname=${host} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN`,
    'PartitionName=debug Nodes=kvlens1 Default=YES MaxTime=INFINITE State=UP',
    '',
  ].join('\n'));
  const cluster = new Cluster(dir);
  const munged = which('munged')!;
  cluster.start('munged', munged, ['--foreground', '--force', `--key-file=${join(dir, 'munge', 'munge.key')}`, `--socket=${socket}`,
    `--pid-file=${join(dir, 'munge', 'munged.pid')}`, `--log-file=${join(dir, 'log', 'munged.log')}`, `--seed-file=${join(dir, 'munge', 'seed')}`]);
  for (let i = 0; i < 50 && !existsSync(socket); i++) await sleep(100);
  if (!existsSync(socket)) return { cluster, skip: `munged did not start: ${cluster.log('munged.log')}` };
  cluster.start('slurmctld', which('slurmctld')!, ['-D', '-c', '-i', '-f', join(dir, 'slurm.conf')]);
  cluster.start('slurmd', which('slurmd')!, ['-D', '-N', 'kvlens1', '-f', join(dir, 'slurm.conf')]);
  for (let i = 0; i < 60; i++) {
    const r = spawnSync('sinfo', ['-h', '-o', '%T'], { env: cluster.env, encoding: 'utf8' });
    if (r.status === 0 && /^idle/m.test(r.stdout)) return { cluster };
    if (cluster.daemons.some((d) => d.child.exitCode !== null)) break;
    await sleep(500);
  }
  return { cluster, skip: `the single-node cluster did not come up: slurmctld: ${cluster.log('slurmctld.log')}\nslurmd: ${cluster.log('slurmd.log')}` };
}

test('real Slurm: array extract + afterok merge, one task requeued mid-run (SIGTERM), merged store byte-identical to one run', { timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-slurm-'));
  const started = await startCluster(join(dir, 'cluster'));
  try {
    if ('skip' in started) {
      say(`skipped: ${started.skip}`);
      t.skip(started.skip);
      return;
    }
    const { cluster } = started;
    const model = tinyModel();
    const images = join(dir, 'images');
    await writeImages(images, N);
    const stores = join(dir, 'stores');
    const logs = join(dir, 'logs');
    mkdirSync(stores);
    mkdirSync(logs);
    // One image per shard file, so shard boundaries do not depend on how the list was split.
    const extractArgs = '--taps values --layers 0,5 --max-shard-mb 0.001 --progress-interval 0';
    const reference = join(dir, 'single');
    const ref = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'kvlens.js'), 'extract', '--model', model, '--images', images, '--out', reference, ...extractArgs.split(' ')], { encoding: 'utf8' });
    assert.equal(ref.status, 0, ref.stderr);
    say('reference: one unsharded kvlens extract of the 24 images done');

    const jobEnv = { MODEL: model, IMAGES: images, STORES: stores, KVLENS_HOME: REPO_ROOT, EXTRACT_ARGS: extractArgs };
    const array = cluster.cmd('sbatch', ['--parsable', '--array=0-2', '--cpus-per-task=1', '--time=00:10:00', `--output=${join(logs, 'extract-%a.out')}`,
      join(REPO_ROOT, 'examples', 'slurm', 'extract-array.sbatch')], jobEnv).trim();
    let merge = cluster.cmd('sbatch', ['--parsable', `--dependency=afterok:${array}`, `--output=${join(logs, 'merge.out')}`,
      join(REPO_ROOT, 'examples', 'slurm', 'merge.sbatch')], jobEnv).trim();
    say(`submitted array job ${array} (tasks 0-2) and merge job ${merge} (afterok:${array})`);

    // Requeue task 1 once it has stored two images: Slurm sends it SIGTERM (like scancel or preemption) and queues it again.
    const task1Log = join(logs, 'extract-1.out');
    const progressed = () => existsSync(task1Log) && (readFileSync(task1Log, 'utf8').match(/^extract \d+\/\d+/gm) ?? []).length >= 2;
    for (let i = 0; i < 1200 && !progressed(); i++) await sleep(100);
    assert.ok(progressed(), `task 1 made no progress: ${existsSync(task1Log) ? readFileSync(task1Log, 'utf8') : '(no output)'}`);
    cluster.cmd('scontrol', ['requeue', `${array}_1`]);
    say(`requeued ${array}_1 mid-run (state ${cluster.jobState(`${array}_1`)})`);
    // Once pending again, a requeued job waits out a begin-time delay (about two minutes), which gives the stopped
    // process time to exit. Wait for that exit here (its last line), then let the task start at once.
    for (let i = 0; i < 600 && !/\(exit 143\)|Killed|CANCELLED.*\n.*\n?$/.test(readFileSync(task1Log, 'utf8')); i++) await sleep(100);
    for (let i = 0; i < 100; i++) {
      const info = cluster.cmd('scontrol', ['show', 'job', `${array}_1`]);
      const begin = /BeginTime=(\S+)/.exec(info)?.[1];
      if (/JobState=(RUNNING|COMPLETED)/.test(info) || (/JobState=PENDING/.test(info) && begin && Date.parse(begin) <= Date.now() + 1000)) break;
      if (/JobState=PENDING/.test(info)) {
        try {
          cluster.cmd('scontrol', ['update', `jobid=${array}_1`, 'StartTime=now']);
        } catch (e) {
          if (!/no longer pending/.test((e as Error).message)) throw e; // it started meanwhile
        }
      }
      await sleep(200);
    }
    say(`${array}_1 released (state ${cluster.jobState(`${array}_1`)})`);
    let state = '';
    let seen = '';
    let retried = false;
    for (let i = 0; i < 2400; i++) {
      state = cluster.jobState(merge);
      const now = `task 1 ${cluster.jobState(`${array}_1`)}, merge ${state}`;
      if (now !== seen) say(seen = now);
      if (!/PENDING|RUNNING|CONFIGURING|COMPLETING/.test(state)) break;
      if (/FAILED|CANCELLED/.test(cluster.jobState(`${array}_1`))) {
        if (retried) break; // the merge would never run: report now
        // Slurm occasionally ends a task requeued while it stops as FAILED; recover as the README says: requeue the
        // task, and once it has completed submit the merge again (the old one waits on a dependency never satisfied).
        retried = true;
        say(`${array}_1 ended FAILED after the requeue; requeueing it again and resubmitting the merge`);
        cluster.cmd('scontrol', ['requeue', `${array}_1`]);
        for (let k = 0; k < 300 && !/COMPLETED|FAILED/.test(cluster.jobState(`${array}_1`)); k++) {
          try { cluster.cmd('scontrol', ['update', `jobid=${array}_1`, 'StartTime=now']); } catch { /* not pending */ }
          await sleep(500);
        }
        cluster.cmd('scancel', [merge]);
        merge = cluster.cmd('sbatch', ['--parsable', `--output=${join(logs, 'merge.out')}`, join(REPO_ROOT, 'examples', 'slurm', 'merge.sbatch')], jobEnv).trim();
      }
      await sleep(250);
    }
    const task1 = readFileSync(task1Log, 'utf8');
    say(`task 1 output:\n${task1.trim().split('\n').filter((l) => !/^extract \d+\/\d+/.test(l) || /SIGTERM|stopped/.test(l)).map((l) => `    ${l}`).join('\n')}`);
    const mergeOut = existsSync(join(logs, 'merge.out')) ? readFileSync(join(logs, 'merge.out'), 'utf8') : '(no output)';
    say(`merge job ${merge}: ${state}\n${mergeOut.trim().split('\n').map((l) => `    ${l}`).join('\n')}`);
    assert.equal(state, 'COMPLETED', mergeOut);
    assert.match(task1, /SIGTERM received: stopping at the next image boundary/);
    assert.match(task1, /stopped at an image boundary \(SIGTERM\).*\(exit 143\)/);
    assert.match(task1, /extract: 8 images \([1-7] already stored\)/, 'the requeued task resumed its store');
    assert.match(mergeOut, /merged 3 stores into .*: 24 images in 24 shards/);
    assert.match(mergeOut, /verify\s+ok/);
    const merged = storeFiles(join(stores, 'merged'));
    const single = storeFiles(reference);
    assert.deepEqual([...merged.keys()], [...single.keys()]);
    for (const [name, bytes] of single) assert.ok(bytes.equals(merged.get(name)!), `${name} differs from the single run`);
    say(`merged store byte-identical to one unsharded run (${merged.size} files)`);
  } finally {
    if (started.cluster) {
      spawnSync('scancel', ['--full', '--user', userInfo().username], { env: started.cluster.env });
      await started.cluster.stop();
    }
  }
});
