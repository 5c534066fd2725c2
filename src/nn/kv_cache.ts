// The key/value cache for incremental decoding: per layer, keys (after rope) and values in preallocated
// [B, Hkv, capacity, D] buffers. A forward call writes its T new positions at [length, length + T) in every
// layer, attends over [0, length + T), and then advances `length` once. Rows stay aligned (left padding is
// expressed through the attention mask, not per-row lengths).

import type { FloatArray } from '../backend/index.ts';
import { AlignkitError, ShapeError, empty, fmtShape, narrow, untracked, type Tensor } from '../tensor/index.ts';
import type { KvCache } from '../models/types.ts';

export class LayeredKvCache implements KvCache {
  private readonly keys: Tensor[];
  private readonly values: Tensor[];
  private filled = 0;
  private disposed = false;
  private scratch: Tensor[] | null = null;
  private maskCache: { src: Tensor | null; n: number; epoch: number; tensor: Tensor } | null = null;
  /** Bumped whenever length changes: a padded mask is reused only within one forward. */
  private epoch = 0;

  constructor(
    /** The model that created the cache (a forward of another model rejects it). */
    readonly owner: object,
    readonly batch: number,
    readonly capacity: number,
    readonly numLayers: number,
    readonly kvHeads: number,
    readonly headDim: number,
  ) {
    for (const [what, v] of [['batch', batch], ['capacity', capacity]] as const)
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`createCache: ${what} must be a positive integer, got ${v}`);
    const shape = [batch, kvHeads, capacity, headDim];
    this.keys = [];
    this.values = [];
    untracked(() => {
      for (let l = 0; l < numLayers; l++) {
        this.keys.push(empty(shape));
        this.values.push(empty(shape));
      }
    });
  }

  get length(): number {
    return this.filled;
  }

  /** Bytes held by the buffers. */
  get bytes(): number {
    return this.keys.reduce((s, k) => s + 2 * k.size * (k.dtype === 'float64' ? 8 : 4), 0);
  }

  private live(): void {
    if (this.disposed) throw new AlignkitError('KvCache: used after dispose()');
  }

  /** Checks a forward of T new positions for `batch` rows fits. */
  check(batch: number, T: number): void {
    this.live();
    if (batch !== this.batch) throw new ShapeError(`KvCache: created for batch ${this.batch}, used with batch ${batch}`);
    if (this.filled + T > this.capacity)
      throw new ShapeError(`KvCache: ${this.filled} cached + ${T} new positions exceed the capacity of ${this.capacity}`);
  }

  /** Copies k, v [B, Hkv, T, D] (contiguous) into layer `layer` at positions [length, length + T). */
  write(layer: number, k: Tensor, v: Tensor): void {
    this.live();
    const [B, H, T, D] = k.shape;
    if (B !== this.batch || H !== this.kvHeads || D !== this.headDim || v.shape.some((d, i) => d !== k.shape[i]))
      throw new ShapeError(`KvCache.write: k ${fmtShape(k.shape)} / v ${fmtShape(v.shape)} do not fit the cache [${this.batch},${this.kvHeads},${this.capacity},${this.headDim}]`);
    const at = this.filled;
    const cap = this.capacity;
    for (const [src, dst] of [[k, this.keys[layer]], [v, this.values[layer]]] as const) {
      const s = src.data as FloatArray;
      const d = dst.storage.data as FloatArray;
      // one contiguous block of T*D values per (row, head)
      for (let bh = 0; bh < B * H; bh++) d.set(s.subarray(bh * T * D, (bh + 1) * T * D), (bh * cap + at) * D);
    }
  }

  /**
   * Keys and values of positions [0, n) of a layer as contiguous [B, Hkv, n, D] tensors: views of the buffers
   * when that range is contiguous (full cache, or one row with one head), else compact copies. With
   * `reuse`, the copies go into two scratch buffers shared by all layers (no allocation per layer and step);
   * only for callers that drop the result before the next read (inference: no backward pass reads it later).
   */
  read(layer: number, n: number, reuse = false): { k: Tensor; v: Tensor } {
    this.live();
    if (reuse && !this.scratch) this.scratch = untracked(() => [empty(this.keys[0].shape), empty(this.keys[0].shape)]);
    const s = reuse ? this.scratch : null;
    return { k: this.prefix(this.keys[layer], n, s ? s[0] : null), v: this.prefix(this.values[layer], n, s ? s[1] : null) };
  }

  private prefix(buf: Tensor, n: number, scratch: Tensor | null): Tensor {
    const view = narrow(buf, 2, 0, n);
    if (view.isContiguous) return view;
    view.dispose();
    const [B, H, cap, D] = buf.shape;
    const shape = [B, H, n, D];
    const out = scratch ? scratch.withLayout(shape, [H * n * D, n * D, D, 1], 0) : empty(shape, 'float', buf.backend);
    const s = buf.storage.data as FloatArray;
    const o = out.storage.data as FloatArray;
    for (let bh = 0; bh < B * H; bh++) o.set(s.subarray(bh * cap * D, (bh * cap + n) * D), bh * n * D);
    return out;
  }

  /** The whole [B, Hkv, capacity, D] buffers of a layer (positions >= length hold stale or zero values). */
  buffers(layer: number): { k: Tensor; v: Tensor } {
    this.live();
    return { k: this.keys[layer], v: this.values[layer] };
  }

  /**
   * A [B, capacity] uint8 key mask: `mask` (or ones) over the first n positions, 0 beyond — to attend over the
   * whole buffers. Built once per forward and shared by its layers.
   */
  paddedMask(mask: Tensor | null, n: number): Tensor {
    this.live();
    const c = this.maskCache;
    if (c && c.src === mask && c.n === n && c.epoch === this.epoch) return c.tensor;
    c?.tensor.dispose();
    const B = this.batch;
    const cap = this.capacity;
    const t = untracked(() => empty([B, cap], 'uint8'));
    const d = t.storage.data as Uint8Array;
    const m = mask ? (mask.data as ArrayLike<number | bigint>) : null;
    for (let b = 0; b < B; b++) for (let s = 0; s < n; s++) d[b * cap + s] = !m || m[b * n + s] ? 1 : 0;
    this.maskCache = { src: mask, n, epoch: this.epoch, tensor: t };
    return t;
  }

  /** Marks T more positions as filled (after every layer wrote them). */
  advance(T: number): void {
    this.live();
    this.filled += T;
    this.epoch++;
  }

  /** Forgets positions >= n (e.g. to reuse a prompt prefix); the buffers are kept. */
  truncate(n: number): void {
    this.live();
    if (!Number.isSafeInteger(n) || n < 0 || n > this.filled) throw new RangeError(`KvCache.truncate: ${n} is not in [0, ${this.filled}]`);
    this.filled = n;
    this.epoch++;
  }

  /** Empties the cache for reuse. */
  reset(): void {
    this.truncate(0);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.keys) t.dispose();
    for (const t of this.values) t.dispose();
    for (const t of this.scratch ?? []) t.dispose();
    this.scratch = null;
    this.maskCache?.tensor.dispose();
    this.maskCache = null;
  }
}
