// What Linux's /proc says about a running process, for the bench: the files it maps, how much of its executable
// is resident, how many bytes it has read from storage, and which pages of a mapping it has touched.
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, readSync, statSync } from "node:fs";

/** One line of /proc/PID/maps (and the head of one entry of /proc/PID/smaps). */
export interface Mapping {
  start: number;
  end: number;
  /** "r-xp" and the like. */
  perms: string;
  /** Where in the file the mapping starts. */
  offset: number;
  /** The file's path; "" for anonymous memory, "[heap]" and the like for the kernel's names. */
  path: string;
  /** Resident bytes (smaps only; 0 from maps). */
  rss: number;
}

// "00400000-00746000 r--p 00000000 fe:00 1234   /path/to/file" (the path may hold spaces, or end in " (deleted)").
const mapLine = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$/;

/** Parses /proc/PID/maps, or /proc/PID/smaps (whose Rss lines it adds to the mapping above them). */
export function parseMaps(text: string): Mapping[] {
  const mappings: Mapping[] = [];
  for (const line of text.split("\n")) {
    const head = mapLine.exec(line);
    if (head) {
      mappings.push({ start: parseInt(head[1], 16), end: parseInt(head[2], 16), perms: head[3], offset: parseInt(head[4], 16), path: head[5], rss: 0 });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss && mappings.length > 0) mappings[mappings.length - 1].rss += Number(rss[1]) * 1024;
  }
  return mappings;
}

/** The regular files among the mappings, each once: the executable, shared libraries, native addons. */
export function mappedFiles(mappings: Mapping[]): string[] {
  const files = mappings.map((mapping) => mapping.path).filter((path) => path.startsWith("/") && !path.endsWith(" (deleted)") && !/^\/(dev|proc|sys|memfd:)/.test(path));
  return [...new Set(files)];
}

/** Resident bytes of every mapping of `path` (its segments: text, rodata, data). */
export function residentBytesOf(mappings: Mapping[], path: string): number {
  return mappings.filter((mapping) => mapping.path === path).reduce((sum, mapping) => sum + mapping.rss, 0);
}

/** The counters of /proc/PID/io, by name ("read_bytes": bytes this process caused to be read from storage). */
export function parseIo(text: string): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const match of text.matchAll(/^(\w+): (\d+)$/gm)) counters[match[1]] = Number(match[2]);
  return counters;
}

/**
 * Major page faults from /proc/PID/stat (its 12th field, counted from the process name's closing parenthesis on,
 * since a name may hold spaces): how many times the process waited for a page to be read from storage.
 */
export function parseMajorFaults(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt (fields 3 to 12).
  const majflt = Number(fields[9]);
  if (!Number.isInteger(majflt)) throw new Error(`no major fault count in ${JSON.stringify(stat.slice(0, 200))}`);
  return majflt;
}

/**
 * The first two fields of /proc/PID/schedstat, in milliseconds: time on a CPU, and time runnable but waiting for
 * one. For the main thread (whose schedstat /proc/PID/schedstat is), the wait is how much a busy machine delayed
 * the work that leads to the first `/next`.
 */
export function parseSchedstat(text: string): { onCpuMs: number; waitMs: number } {
  const [onCpu, wait] = text.trim().split(" ").map(Number);
  if (!Number.isFinite(onCpu) || !Number.isFinite(wait)) throw new Error(`not a schedstat line: ${JSON.stringify(text.slice(0, 100))}`);
  return { onCpuMs: onCpu / 1e6, waitMs: wait / 1e6 };
}

/** A live process, read at one moment. */
export interface ProcessView {
  /** The executable's path (/proc/PID/exe). */
  executable: string;
  /** read_bytes from /proc/PID/io: what it read from storage, page faults and readahead included. */
  readBytes: number;
  /** Resident bytes of the executable's mappings (smaps Rss). */
  executableRss: number;
  /** Times it waited for a page to be read from storage (major page faults, all threads). */
  majorFaults: number;
  /** Milliseconds its main thread was runnable but waiting for a CPU (other work on the machine). */
  cpuWaitMs: number;
  /** Every file it maps. */
  files: string[];
  mappings: Mapping[];
}

export function viewProcess(pid: number): ProcessView {
  const executable = readlinkSync(`/proc/${pid}/exe`);
  const io = parseIo(readFileSync(`/proc/${pid}/io`, "latin1"));
  if (io.read_bytes === undefined) throw new Error(`no read_bytes in /proc/${pid}/io`);
  const mappings = parseMaps(readFileSync(`/proc/${pid}/smaps`, "latin1"));
  const majorFaults = parseMajorFaults(readFileSync(`/proc/${pid}/stat`, "latin1"));
  const cpuWaitMs = parseSchedstat(readFileSync(`/proc/${pid}/schedstat`, "latin1")).waitMs;
  return { executable, readBytes: io.read_bytes, executableRss: residentBytesOf(mappings, executable), majorFaults, cpuWaitMs, files: mappedFiles(mappings), mappings };
}

const PAGE = 4096;

/**
 * Which pages of [start, end) the process has in its page tables (bit 63 of each /proc/PID/pagemap entry):
 * the pages it touched, plus the neighbours the kernel maps with them on a fault (fault-around, 64 KiB).
 */
export function presentPages(pid: number, start: number, end: number): Uint8Array {
  const pages = Math.ceil((end - start) / PAGE);
  const entries = Buffer.alloc(pages * 8);
  const fd = openSync(`/proc/${pid}/pagemap`, "r");
  try {
    let read = 0;
    while (read < entries.length) {
      const n = readSync(fd, entries, read, entries.length - read, (start / PAGE) * 8 + read);
      if (n === 0) break;
      read += n;
    }
  } finally {
    closeSync(fd);
  }
  const present = new Uint8Array(pages);
  for (let i = 0; i < pages; i++) present[i] = entries[i * 8 + 7] >> 7;
  return present;
}

/**
 * Which pages of the file at `path` the process has in its page tables, by page of the file ('1' per 4 KiB page):
 * what it touched of its executable, whichever segment the page is mapped in.
 */
export function touchedFilePages(pid: number, mappings: Mapping[], path: string): Uint8Array {
  const touched = new Uint8Array(Math.ceil(statSync(path).size / PAGE));
  for (const mapping of mappings.filter((mapping) => mapping.path === path)) {
    const present = presentPages(pid, mapping.start, mapping.end);
    const first = mapping.offset / PAGE;
    for (let i = 0; i < present.length && first + i < touched.length; i++) touched[first + i] |= present[i];
  }
  return touched;
}

/** The readahead of the block device a file is on, in KiB (/sys/dev/block/MAJOR:MINOR/queue/read_ahead_kb). */
export function readaheadKb(path: string): number | undefined {
  const dev = statSync(path).dev;
  const major = Number((BigInt(dev) >> 8n) & 0xfffn) | Number((BigInt(dev) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(dev) & 0xffn) | Number((BigInt(dev) >> 12n) & ~0xffn);
  // A partition has no queue of its own: its disk's is one folder up.
  for (const queue of [`/sys/dev/block/${major}:${minor}/queue`, `/sys/dev/block/${major}:${minor}/../queue`]) {
    if (existsSync(`${queue}/read_ahead_kb`)) return Number(readFileSync(`${queue}/read_ahead_kb`, "latin1").trim());
  }
  return undefined;
}
