// How the emulator ends the processes it starts (the runtime, the extensions) as Lambda ends a sandbox: whole, including what they started, and never waiting forever on output pipes something else holds.
//
// Each process gets its own process group (spawned detached), so a signal reaches everything it started. A
// grandchild that detached itself into a group of its own escapes that, and if it inherited stdout it also keeps the
// pipe open, so Node's 'close' never comes: it is found by the pipe it holds (/proc, Linux) and killed.
import type { ChildProcess } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import type { Readable } from "node:stream";

/** After a process has exited, how long its pipes may stay open (held by something it left behind) before they are cut. */
const DRAIN_MS = 1000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A started process, its output pipes, and what identifies those pipes. */
export class Started {
  readonly child: ChildProcess;
  /** Resolved once the process has exited and its output has been read to the end (or cut, see DRAIN_MS). */
  readonly exited: Promise<Exit>;
  readonly #pipeInodes: string[];

  constructor(child: ChildProcess, pipes: Readable[]) {
    this.child = child;
    this.#pipeInodes = child.pid === undefined ? [] : pipeInodes(child.pid, pipes.map((_, index) => index + 1));
    this.exited = new Promise((resolve) => {
      let done = false;
      const end = (exit: Exit) => {
        if (done) return;
        done = true;
        resolve(exit);
      };
      child.once("close", (code, signal) => end({ code, signal }));
      child.once("exit", (code, signal) => {
        // Whatever it left behind holding its output goes with it; what the pipes still hold is read, then they are cut.
        this.#killPipeHolders();
        const timer = setTimeout(() => {
          for (const pipe of pipes) pipe.destroy();
          end({ code, signal });
        }, DRAIN_MS);
        child.once("close", () => clearTimeout(timer));
      });
    });
  }

  get running(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Signals the process group; SIGKILL also reaches whatever else holds the output pipes. */
  signal(name: NodeJS.Signals): void {
    if (this.running) {
      try {
        process.kill(-this.child.pid!, name);
      } catch {
        // already gone
      }
    }
    if (name === "SIGKILL") this.#killPipeHolders();
  }

  #killPipeHolders(): void {
    for (const pid of pipeHolders(this.#pipeInodes)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  }
}

/** How Lambda words an exit in `Runtime exited with error: ...`. */
export function exitStatus({ code, signal }: Exit): string {
  return signal ? `signal: ${signal}` : `exit status ${code}`;
}

/** The inodes behind a process's file descriptors (`socket:[123]`: Node's pipes are socket pairs), read from /proc (Linux; none elsewhere). */
function pipeInodes(pid: number, fds: number[]): string[] {
  return fds.map((fd) => safeReadlink(`/proc/${pid}/fd/${fd}`)).filter((link) => link.startsWith("socket:") || link.startsWith("pipe:"));
}

/** Every other process that has one of these pipes open. */
function pipeHolders(inodes: string[]): number[] {
  if (inodes.length === 0) return [];
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid);
  } catch {
    return [];
  }
  return pids.filter((pid) => fdsOf(pid).some((fd) => inodes.includes(safeReadlink(`/proc/${pid}/fd/${fd}`)))).map(Number);
}

function fdsOf(pid: string): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`);
  } catch {
    return []; // not ours to read, or gone
  }
}

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}
