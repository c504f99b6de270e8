// `tsx test/bench/lib/readahead.ts [RUNS]` (root; not part of `npm run bench`): how a cold start depends on the disk's
// readahead, which the bench cannot choose (Lambda's is not published). The bootstraps are copied to a file system
// on a loop device of their own (direct I/O to the backing file, so the machine's page cache is not in the way)
// whose read_ahead_kb this script sets, leaving every other disk alone; each is then started with a cold page
// cache, as it is and with a sequential read of the whole file running alongside (`cat bootstrap & exec bootstrap`:
// one large read instead of a page fault's small ones).
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { build, root } from "./builds.ts";
import { evict } from "./page-cache.ts";
import { coldStart, filesOf, type Runnable } from "./processes.ts";
import { mb, ms, summarise, table } from "./stats.ts";

const READAHEADS_KB = [128, 512, 2048, 8192];
const runs = Number(process.argv[2] ?? 7);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("readahead.ts makes a loop device and mounts it: run it as root");
  const builds = [
    { label: "hello", built: await build("examples/hello/main.ts", "hello", "x86_64") },
    { label: "hello `--snapshot`", built: await build("examples/hello/main.ts", "hello", "x86_64", ["--snapshot"]) },
    { label: "heavy init", built: await build("examples/heavy-init/main.ts", "heavy-init", "x86_64") },
    { label: "heavy init `--snapshot`", built: await build("examples/heavy-init/main.ts", "heavy-init", "x86_64", ["--snapshot"]) },
  ];
  const work = join(root, "node_modules/.cache/micro-lambda/bench/readahead");
  const image = join(work, "disk.img");
  const mount = join(work, "mnt");
  mkdirSync(mount, { recursive: true });
  const bytes = builds.reduce((sum, { built }) => sum + statSync(built.bootstrap).size, 0);
  writeFileSync(image, "");
  execFileSync("truncate", ["-s", `${Math.ceil((bytes * 1.3) / 2 ** 20) + 64}M`, image]);
  execFileSync("mkfs.ext4", ["-q", "-F", image]);
  const loop = execFileSync("losetup", ["--direct-io=on", "--find", "--show", image], { encoding: "utf8" }).trim();
  const setting = `/sys/block/${basename(loop)}/queue/read_ahead_kb`;
  try {
    execFileSync("mount", [loop, mount]);
    const runnables = builds.map(({ label, built }, i) => {
      const copy = join(mount, `bootstrap-${i}`);
      copyFileSync(built.bootstrap, copy);
      return { label, runnable: { label, command: [copy] } as Runnable };
    });
    execFileSync("sync");
    const files = new Map<string, string[]>();
    for (const { runnable } of runnables) files.set(runnable.command[0], filesOf(runnable, await coldStart(runnable)));

    const rows: string[][] = [];
    for (const kb of READAHEADS_KB) {
      writeFileSync(setting, String(kb));
      for (const { label, runnable } of runnables) {
        const plain: number[] = [];
        const read: number[] = [];
        const waits: number[] = [];
        const prefetched: number[] = [];
        const path = runnable.command[0];
        const prefetch: Runnable = { label: `${label}, prefetched`, command: ["/bin/sh", "-c", `cat '${path}' >/dev/null & exec '${path}'`] };
        for (let i = 0; i < runs; i++) {
          await evict(files.get(path)!);
          const sample = await coldStart(runnable);
          plain.push(sample.ms);
          read.push(sample.readBytes);
          waits.push(sample.majorFaults);
          await evict(files.get(path)!);
          prefetched.push((await coldStart(prefetch)).ms);
        }
        const median = (values: number[]) => summarise(values).median;
        rows.push([`${kb} KiB`, label, ms(median(plain)), mb(median(read)), String(median(waits)), ms(median(prefetched))]);
      }
    }
    console.log(`Cold page cache, median of ${runs} runs each, bootstraps on a loop device (direct I/O) of this machine's disk:\n`);
    console.log(table(["read_ahead_kb", "bootstrap", "cold start", "read from storage", "waits for storage (major faults)", "with `cat bootstrap &` alongside"], rows).join("\n"));
  } finally {
    try {
      execFileSync("umount", [mount]);
    } catch {} // not mounted: the failure is reported below
    execFileSync("losetup", ["-d", loop]);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
