import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { compress } from 'zstd-napi';
import { encodeOp } from '../../src/tardiff/ops.js';
import { OpCode } from '../../src/tardiff/ops.js';
import { TARDIFF_MAGIC_V1, TARDIFF_MAGIC_V2 } from '../../src/tardiff/stream.js';
import {
  bestSh,
  envWithoutExtraCaCerts,
  interleaved,
  mib,
  rate,
  report,
  sh,
  timedCmd,
  WITHOUT_EXTRA_CA_CERTS,
  type CmdStats,
} from './measure.js';

const ODH = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'bin', 'odh.js');

async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    for (let done = 0; done < bytes; done += 1 << 22) {
      await fh.write(randomBytes(Math.min(1 << 22, bytes - done)));
    }
  } finally {
    await fh.close();
  }
}

function tarDiff(v2: boolean, ops: Buffer[]): Buffer {
  return Buffer.concat([v2 ? TARDIFF_MAGIC_V2 : TARDIFF_MAGIC_V1, compress(Buffer.concat(ops))]);
}

/**
 * tar-patch throughput on an output of `outBytes`, made mostly of Copy ops (with a little literal Data
 * between them, as tar headers would be), against the floor `cat SOURCES | sha256sum` in the same run:
 * both read the same source bytes and hash a stream of the output's size.
 */
export async function benchCopyThroughput(work: string, outBytes: number): Promise<void> {
  const src = path.join(work, 'copy-src');
  await fs.mkdir(src, { recursive: true });
  const fileSize = 64 << 20;
  const files: string[] = [];
  for (let i = 0; i * fileSize < outBytes; i++) {
    const name = `usr/lib/file${i}.so`;
    await fs.mkdir(path.join(src, 'usr/lib'), { recursive: true });
    await writeRandomFile(path.join(src, name), fileSize);
    files.push(name);
  }
  const ops: Buffer[] = [];
  const header = Buffer.alloc(512, 0x61);
  for (const name of files) {
    ops.push(encodeOp(OpCode.Data, header), encodeOp(OpCode.Open, Buffer.from(name)));
    ops.push(encodeOp(OpCode.Copy, fileSize));
  }
  const delta = path.join(work, 'copy.tardiff');
  await fs.writeFile(delta, tarDiff(false, ops));
  const total = files.length * (fileSize + 512);
  const catList = files.map((f) => JSON.stringify(path.join(src, f))).join(' ');
  const floor = await bestSh(3, `cat ${catList} | sha256sum`);
  const ours = await bestSh(3, `node ${ODH} tar-patch ${delta} ${src} - | sha256sum`);
  process.stdout.write(`tar-patch, ${mib(total)} output of Copy ops: ${rate(total, ours.seconds)}\n`);
  report('tar-patch Copy throughput vs cat|sha256sum', ours.seconds, floor.seconds, 0.7);
}

/**
 * A ZstdDict-heavy delta (frames made by `zstd --patch-from`) against `zstd -d --patch-from` decoding the
 * same frames in the same run.
 */
export async function benchZstdDict(work: string, files: number, fileSize: number): Promise<void> {
  const src = path.join(work, 'dict-src');
  const dst = path.join(work, 'dict-new');
  const patches = path.join(work, 'dict-patches');
  for (const d of [src, dst, patches]) await fs.mkdir(d, { recursive: true });
  const ops: Buffer[] = [];
  let total = 0;
  for (let i = 0; i < files; i++) {
    const name = `lib${i}.so`;
    const old = randomBytes(fileSize);
    const neu = Buffer.from(old);
    // A package update: small edits scattered through the binary, and a tail that grew.
    for (let off = 4096; off + 64 < neu.length; off += 256 << 10) randomBytes(64).copy(neu, off);
    const grown = Buffer.concat([neu, randomBytes(8192)]);
    await fs.writeFile(path.join(src, name), old);
    await fs.writeFile(path.join(dst, name), grown);
    await sh(
      `zstd -q -3 -f --patch-from=${path.join(src, name)} ${path.join(dst, name)} -o ${path.join(patches, name)}.zst`,
    );
    const frame = await fs.readFile(`${path.join(patches, name)}.zst`);
    ops.push(encodeOp(OpCode.Open, Buffer.from(name)), encodeOp(OpCode.ZstdDict, frame));
    total += grown.length;
  }
  const delta = path.join(work, 'dict.tardiff');
  await fs.writeFile(delta, tarDiff(true, ops));
  const decodeAll = Array.from(
    { length: files },
    (_, i) =>
      `zstd -q -d --memory=1024MB --patch-from=${path.join(src, `lib${i}.so`)} ${path.join(patches, `lib${i}.so`)}.zst -c`,
  ).join('; ');
  // Interleaved (floor, ours, floor, ours …) with CPU time: on a shared machine wall time is mostly
  // other people's work, CPU time much less so.
  const floorCmd = `{ ${decodeAll}; } > /dev/null`;
  const oursCmd = `node ${ODH} tar-patch ${delta} ${src} - > /dev/null`;
  const bare = envWithoutExtraCaCerts();
  const timedSh = (command: string, env?: NodeJS.ProcessEnv) => () => timedCmd('sh', ['-c', command], env);
  const [floor, ours, oursBare] = (await interleaved(3, [
    timedSh(floorCmd),
    timedSh(oursCmd),
    ...(bare === null ? [] : [timedSh(oursCmd, bare)]),
  ])) as [CmdStats, CmdStats, CmdStats?];
  const [ow, oc, fw, fc] = [ours.wall, ours.cpu, floor.wall, floor.cpu];
  process.stdout.write(
    `ZstdDict, ${files} × ${mib(fileSize)}: ${rate(total, ow)}; CPU ours ${oc.toFixed(2)} s (node start-up included), ` +
      `zstd -d --patch-from ${fc.toFixed(2)} s: ${((100 * fc) / oc).toFixed(0)} % by CPU\n`,
  );
  report('ZstdDict apply vs zstd -d --patch-from', ow, fw, 0.85);
  if (oursBare !== undefined) {
    process.stdout.write(
      `ZstdDict, ${files} × ${mib(fileSize)}, ${WITHOUT_EXTRA_CA_CERTS}: ours ${oursBare.wall.toFixed(3)} s, ` +
        `CPU ${oursBare.cpu.toFixed(2)} s: ${((100 * fw) / oursBare.wall).toFixed(0)} % of the floor\n`,
    );
  }
}

/** Peak RSS of `odh tar-patch` producing a 1 GiB output (goal < 300 MiB). */
export async function benchPeakRss(work: string): Promise<void> {
  const src = path.join(work, 'copy-src');
  const names = (await fs.readdir(path.join(src, 'usr/lib'))).map((n) => `usr/lib/${n}`);
  const ops: Buffer[] = [];
  let total = 0;
  for (let pass = 0; total < 1 << 30; pass++) {
    for (const name of names) {
      if (total >= 1 << 30) break;
      const size = (await fs.stat(path.join(src, name))).size;
      ops.push(encodeOp(OpCode.Open, Buffer.from(name)), encodeOp(OpCode.Copy, size));
      ops.push(encodeOp(OpCode.Data, randomBytes(4096)));
      total += size + 4096;
    }
  }
  const delta = path.join(work, 'gib.tardiff');
  await fs.writeFile(delta, tarDiff(false, ops));
  const out = path.join(work, 'gib.out');
  const run = await sh(`node ${ODH} tar-patch ${delta} ${src} ${out}`);
  await fs.rm(out, { force: true });
  const peak = run.maxRssKiB / 1024;
  process.stdout.write(
    `peak RSS applying a ${mib(total)} tar-diff: ${peak.toFixed(0)} MiB (goal < 300 MiB: ${peak < 300 ? 'meets' : 'ABOVE'})\n`,
  );
}
