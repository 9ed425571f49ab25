/**
 * A layer worker (worker_threads): streams whole layers of an OCI layout — read, blob digest,
 * decompress, tar, fs-verity hashing, diff_id — and posts their tree items to the thread that owns
 * the tree builder (layer-pool.ts), which applies them in layer order. One task at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openLayoutArchive, openLayoutDir, type LocalLayoutReader } from '../../oci/layout.js';
import { detachEarly } from '../../util/detach.js';
import { isOdhError } from '../../util/errors.js';
import type { OciNewNode } from './merge.js';
import type { OciPath } from './entry.js';
import { WireWriter } from './layer-wire.js';
import type { LayerWorkerData, ToPool, ToWorker } from './layer-pool.js';
import { streamLayer, streamLayerBlocking, type LayerStreamOptions } from './layer-stream.js';
import { haveBlockingDecoders } from '../../oci/compression.js';

/** Bytes of items per message: large enough that posting costs little, small enough to apply promptly. */
const BATCH_BYTES = 256 << 10;
/** Progress at most every this many compressed bytes. */
const PROGRESS_STEP = 4 << 20;

const port = parentPort!;
// Batches leave by transfer, which detaches their buffers.
detachEarly();
const data = workerData as LayerWorkerData;
let reader: LocalLayoutReader | undefined;

function post(m: ToPool): void {
  port.postMessage(m);
}

async function run(task: ToWorker): Promise<void> {
  const { index } = task.layer;
  const batch = new WireWriter();
  const flush = () => {
    if (batch.count === 0) return;
    const bytes = batch.take();
    port.postMessage({ type: 'items', index, bytes } satisfies ToPool, [bytes.buffer]);
  };
  const sink = {
    apply(path: OciPath, node: OciNewNode) {
      batch.add(path, node);
      if (batch.byteLength >= BATCH_BYTES) flush();
    },
  };
  let reported = -PROGRESS_STEP;
  try {
    reader ??= await (data.ref.transport === 'oci' ? openLayoutDir : openLayoutArchive)(data.ref.path);
    const opts: LayerStreamOptions = {
      hash: data.hash,
      onProgress: (p) => {
        if (p.blobBytes - reported < PROGRESS_STEP && p.blobBytes < p.blobSize) return;
        reported = p.blobBytes;
        post({ type: 'progress', index, blobBytes: p.blobBytes });
      },
    };
    // This thread's only job is this layer: read, decode, parse and hash it on the spot. Items and
    // progress still leave as it goes (posting does not wait); the pool stops a worker by terminating it.
    if (haveBlockingDecoders()) {
      streamLayerBlocking(sink, await reader.openBlobBlocking(task.layer.desc), task.layer, opts);
    } else {
      await streamLayer(sink, await reader.openBlob(task.layer.desc), task.layer, opts);
    }
    flush();
    post({ type: 'done', index });
  } catch (e) {
    post({ type: 'error', index, error: errorToWire(e) });
  }
}

function errorToWire(e: unknown): Extract<ToPool, { type: 'error' }>['error'] {
  if (isOdhError(e)) return { code: e.code, message: e.message, context: e.context };
  const err = e instanceof Error ? e : new Error(String(e));
  return { code: null, message: err.message, stack: err.stack };
}

// run() reports a layer's failure itself; anything escaping it (a failed postMessage) is rethrown as
// an uncaught exception, which ends this worker with an 'error' event the pool turns into the run's error.
port.on('message', (m: ToWorker) => {
  run(m).catch((e: unknown) =>
    setImmediate(() => {
      throw e;
    }),
  );
});
