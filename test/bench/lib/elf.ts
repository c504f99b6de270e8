// The sections of an ELF64 executable (its section headers: name, place in the file, size), to say which parts of
// a bootstrap a cold start reads: the machine code, read-only data, symbols for the dynamic linker, the SEA blob.
import { closeSync, openSync, readSync, fstatSync } from "node:fs";

export interface Section {
  name: string;
  /** Where it starts in the file. */
  offset: number;
  /** Bytes in the file (0 for sections that take memory but no file space, like .bss). */
  size: number;
  type: number;
}

const SHT_NOBITS = 8;
const SHT_NOTE = 7;

/** The sections of an ELF64 little-endian file (x86_64 and arm64 Linux executables are both). */
export function readSections(path: string): Section[] {
  const fd = openSync(path, "r");
  try {
    const read = (position: number, length: number) => {
      const buffer = Buffer.alloc(length);
      if (readSync(fd, buffer, 0, length, position) !== length) throw new Error(`${path}: ends before byte ${position + length}`);
      return buffer;
    };
    const header = read(0, 64);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) throw new Error(`${path} is not a little-endian ELF64 file`);
    const sectionsAt = Number(header.readBigUInt64LE(0x28));
    const entrySize = header.readUInt16LE(0x3a);
    const count = header.readUInt16LE(0x3c);
    const namesIndex = header.readUInt16LE(0x3e);
    if (sectionsAt + entrySize * count > fstatSync(fd).size) throw new Error(`${path}: section headers past the end of the file`);
    const table = read(sectionsAt, entrySize * count);
    const raw = Array.from({ length: count }, (_, i) => {
      const at = i * entrySize;
      return {
        nameAt: table.readUInt32LE(at),
        type: table.readUInt32LE(at + 4),
        offset: Number(table.readBigUInt64LE(at + 0x18)),
        size: Number(table.readBigUInt64LE(at + 0x20)),
      };
    });
    const names = read(raw[namesIndex].offset, raw[namesIndex].size);
    const nameOf = (at: number) => names.toString("latin1", at, names.indexOf(0, at));
    return raw
      .filter((section) => section.type !== 0)
      .map((section) => ({ name: nameOf(section.nameAt), offset: section.offset, size: section.type === SHT_NOBITS ? 0 : section.size, type: section.type }));
  } finally {
    closeSync(fd);
  }
}

/** The parts a reader cares about, each a group of sections (postject's SEA blob is an unnamed note). */
export function partOf(section: Section): string {
  if (section.name === ".text" || section.name === ".plt" || section.name === ".init" || section.name === ".fini" || section.name === "lpstub" || section.name === "malloc_hook") return "machine code (.text)";
  if (section.name === ".rodata") return "read-only data (.rodata: V8's snapshot, ICU data, tables)";
  if ([".dynsym", ".dynstr", ".gnu.hash", ".gnu.version", ".gnu.version_r", ".rela.dyn", ".rela.plt"].includes(section.name)) return "dynamic symbols and relocations";
  if (section.name.startsWith(".eh_frame") || section.name === ".gcc_except_table") return "unwind tables (.eh_frame)";
  if (section.type === SHT_NOTE && section.name === "") return "SEA blob (postject note)";
  return "other (data, notes, headers)";
}

/** Bytes of each part whose pages are marked in `pages` ('1' per 4 KiB page of the file). */
export function bytesByPart(sections: Section[], pages: string | Uint8Array, fileSize: number): Map<string, { size: number; marked: number }> {
  const PAGE = 4096;
  const owner: string[] = Array(Math.ceil(fileSize / PAGE)).fill("other (data, notes, headers)");
  const parts = new Map<string, { size: number; marked: number }>();
  for (const section of [...sections].sort((a, b) => b.size - a.size)) {
    // Small sections that share a page with a big one leave the page to the big one (sorted by size, biggest first).
    const part = partOf(section);
    const entry = parts.get(part) ?? { size: 0, marked: 0 };
    entry.size += section.size;
    parts.set(part, entry);
    for (let page = Math.floor(section.offset / PAGE); page < Math.ceil((section.offset + section.size) / PAGE); page++) {
      if (owner[page] === "other (data, notes, headers)") owner[page] = part;
    }
  }
  const other = parts.get("other (data, notes, headers)") ?? { size: 0, marked: 0 };
  other.size = Math.max(0, fileSize - [...parts.entries()].filter(([part]) => part !== "other (data, notes, headers)").reduce((sum, [, entry]) => sum + entry.size, 0));
  parts.set("other (data, notes, headers)", other);
  for (let page = 0; page < owner.length; page++) {
    const marked = typeof pages === "string" ? pages[page] === "1" : pages[page] === 1;
    if (marked) parts.get(owner[page])!.marked += Math.min(PAGE, fileSize - page * PAGE);
  }
  return parts;
}
