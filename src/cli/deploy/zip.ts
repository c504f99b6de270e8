// A zip's table of contents and the first bytes of one file in it: enough for deploy to see what a build
// put in function.zip (bootstrap or extensions/NAME, its CPU, glibc for al2) without unpacking 100 MB.
import { constants, inflateRawSync } from "node:zlib";

export interface ZipEntry {
  name: string;
  /** Unix mode bits (0o100755 for an executable file), as zip's "external attributes" carry them. */
  mode: number;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  localHeaderOffset: number;
}

// The record signatures and offsets of the zip format (PKWARE APPNOTE 4.3.7, 4.3.12, 4.3.16).
const endOfCentralDirectory = 0x06054b50;
const centralHeader = 0x02014b50;
const localHeader = 0x04034b50;

/** The files and folders in `zip`, from its central directory. Throws when `zip` is not a zip. */
export function zipEntries(zip: Buffer): ZipEntry[] {
  // The end record is the last 22 bytes, unless a comment (up to 65535 bytes) follows it.
  let end = zip.length - 22;
  const earliest = Math.max(0, end - 0xffff);
  while (end >= earliest && zip.readUInt32LE(end) !== endOfCentralDirectory) end--;
  if (end < earliest) throw new Error("not a zip file (no end of central directory record)");

  const count = zip.readUInt16LE(end + 10);
  const entries: ZipEntry[] = [];
  for (let at = zip.readUInt32LE(end + 16), i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== centralHeader) throw new Error("not a zip file (broken central directory)");
    const nameLength = zip.readUInt16LE(at + 28);
    entries.push({
      name: zip.toString("utf8", at + 46, at + 46 + nameLength),
      mode: zip.readUInt32LE(at + 38) >>> 16,
      method: zip.readUInt16LE(at + 10),
      compressedSize: zip.readUInt32LE(at + 20),
      localHeaderOffset: zip.readUInt32LE(at + 42),
    });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

/** The first `bytes` bytes (or fewer, for a smaller file) of `entry`'s content, inflating only what that takes. */
export function readStart(zip: Buffer, entry: ZipEntry, bytes: number): Buffer {
  const at = entry.localHeaderOffset;
  if (zip.readUInt32LE(at) !== localHeader) throw new Error(`not a zip file (no local header for ${entry.name})`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  const data = zip.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return data.subarray(0, bytes);
  if (entry.method !== 8) throw new Error(`${entry.name}: compression method ${entry.method} is neither stored nor deflated`);
  // A sync flush lets zlib hand back what it has inflated from a cut-off stream instead of failing on it.
  return inflateRawSync(data.subarray(0, bytes + 4096), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, bytes);
}
