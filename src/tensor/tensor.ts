// The Tensor: shape + strides + offset over a reference-counted Storage, plus the reverse-mode autograd
// engine and the memory scopes (tidy / keep) that free activations deterministically.
//
// Memory model. Float storage is allocated by the active backend (native: 64-byte aligned, natively owned,
// freed the moment its last tensor is disposed; Node's GC is only a safety net). A view (reshape, transpose,
// slice...) is a new Tensor object sharing the Storage, which counts its tensors. Every tensor created while a
// `tidy` scope is open is registered in it and disposed when the scope closes, unless returned or `keep()`-ed.
//
// Autograd. An op whose inputs require grad records a Node {inputs, backward}. `loss.backward()` walks the
// graph in reverse topological order, calls each node's backward under no-grad, accumulates into leaves'
// `.grad` (persistent, outside any scope) and disposes intermediate gradients as soon as they are consumed.

import { backend as currentBackend, type Backend, type FloatArray } from '../backend/index.ts';
import { AlignkitError, DTypeError, LifetimeError, ShapeError, fmtShape } from './errors.ts';

export type FloatDType = 'float32' | 'float64';
export type DType = FloatDType | 'int32' | 'int64' | 'uint8' | 'bfloat16' | 'float16';
export type IntArray = Int32Array;
export type TensorData = FloatArray | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

export function isFloatDType(d: DType): d is FloatDType {
  return d === 'float32' || d === 'float64';
}

// ------------------------------------------------------------------------------------------- storage
let liveStorageBytes = 0;
let liveStorages = 0;

export class Storage {
  refs = 0;
  freed = false;
  constructor(
    public data: TensorData,
    /** The backend that allocated `data` (null for JS-owned integer arrays). */
    public readonly backend: Backend | null,
  ) {
    liveStorageBytes += data.byteLength;
    liveStorages++;
  }
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs > 0 || this.freed) return;
    this.freed = true;
    liveStorageBytes -= this.data.byteLength;
    liveStorages--;
    if (this.backend) this.backend.free(this.data as FloatArray);
  }
}

// ------------------------------------------------------------------------------------------- scopes
const scopeStack: Set<Tensor>[] = [];
let gradEnabled = true;
let nextId = 1;
let liveTensors = 0;

/** Runs fn with a fresh scope; disposes every tensor created inside except those in the result and kept ones. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopeStack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopeStack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopeStack.pop();
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  const parent = scopeStack[scopeStack.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) {
      if (parent) parent.add(t);
    } else t.dispose();
  }
  return result;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || value === undefined) return;
  if (value instanceof Tensor) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, out, depth + 1);
  else if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value as Record<string, unknown>)) collectTensors(v, out, depth + 1);
}

/** Removes tensors from every open scope: they live until disposed explicitly. Returns its argument. */
export function keep<T extends Tensor | Tensor[]>(t: T): T {
  for (const x of Array.isArray(t) ? t : [t]) for (const s of scopeStack) s.delete(x);
  return t;
}

/** Runs fn with gradient recording disabled (inference, optimizer steps, backward itself). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

let untrackedDepth = 0;
/** Creates tensors outside any scope (parameters, optimizer state, leaf gradients). */
export function untracked<T>(fn: () => T): T {
  untrackedDepth++;
  try {
    return fn();
  } finally {
    untrackedDepth--;
  }
}

export interface MemoryInfo {
  liveTensors: number;
  liveStorages: number;
  liveStorageBytes: number;
}
export function memoryInfo(): MemoryInfo {
  return { liveTensors, liveStorages, liveStorageBytes };
}

// ------------------------------------------------------------------------------------------- autograd node
export interface GradNode {
  /** Op name, for error messages and debugging. */
  readonly op: string;
  /** The op's inputs (null where an input needs no gradient). */
  readonly inputs: readonly (Tensor | null)[];
  /** Gradients w.r.t. each input (null = none), given the gradient of the output. Runs under noGrad. */
  backward(gradOut: Tensor): (Tensor | null)[];
  /** Buffers saved only for backward (e.g. lse, rstd): disposed as soon as backward has run. */
  readonly saved?: readonly Tensor[];
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function checkShape(shape: readonly number[], op: string): number[] {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${op}: invalid shape ${fmtShape(shape)} (dims must be non-negative integers)`);
  return [...shape];
}

// ------------------------------------------------------------------------------------------- tensor
export class Tensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  private _storage: Storage;
  private _disposed = false;
  /** True if gradients should flow to this tensor (leaf parameters, or results of ops on such). */
  requiresGrad = false;
  /** Accumulated gradient (leaves only), same shape, contiguous, persistent until zeroGrad/dispose. */
  grad: Tensor | null = null;
  /** The op that produced this tensor (null for leaves and tensors created under noGrad). */
  gradNode: GradNode | null = null;
  /** Optional name (parameters), used in messages. */
  name: string | undefined;
  /** Set when a graph intermediate is disposed before backward reached it (reported by backward). */
  disposedFromOp: string | null = null;

  constructor(storage: Storage, shape: readonly number[], strides: readonly number[], offset: number, dtype: DType) {
    this.id = nextId++;
    this._storage = storage;
    storage.retain();
    this.shape = shape;
    this.strides = strides;
    this.offset = offset;
    this.dtype = dtype;
    liveTensors++;
    if (untrackedDepth === 0) scopeStack[scopeStack.length - 1]?.add(this);
  }

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return shapeSize(this.shape);
  }
  get disposed(): boolean {
    return this._disposed;
  }
  get storage(): Storage {
    if (this._disposed) throw new LifetimeError(`tensor #${this.id}${this.name ? ` '${this.name}'` : ''} ${fmtShape(this.shape)} was used after dispose()`);
    return this._storage;
  }
  /** The backend that owns this tensor's float storage (integer tensors report the current backend). */
  get backend(): Backend {
    return this.storage.backend ?? currentBackend();
  }
  get isContiguous(): boolean {
    const expect = contiguousStrides(this.shape);
    for (let i = 0; i < this.shape.length; i++) if (this.shape[i] !== 1 && this.strides[i] !== expect[i]) return false;
    return true;
  }

  /** Asserts the tensor is alive; returns it. Ops call this on every input. */
  live(op: string): this {
    if (this._disposed) throw new LifetimeError(`${op}: tensor #${this.id}${this.name ? ` '${this.name}'` : ''} ${fmtShape(this.shape)} was used after dispose()`);
    return this;
  }

  /**
   * The elements as a typed array in row-major order. Zero-copy (a subarray of the storage) when the tensor is
   * contiguous; otherwise a fresh copy. Writing into it writes into the tensor only in the zero-copy case.
   */
  get data(): TensorData {
    const st = this.storage;
    if (this.isContiguous) return st.data.subarray(this.offset, this.offset + this.size);
    return gatherStrided(this);
  }

  /** The float elements (throws for integer tensors). */
  get floatData(): FloatArray {
    if (!isFloatDType(this.dtype)) throw new DTypeError(`floatData: tensor #${this.id} has dtype ${this.dtype}`);
    return this.data as FloatArray;
  }

  /** A plain number array copy (int64 values converted with Number()). */
  toArray(): number[] {
    const d = this.data;
    return d instanceof BigInt64Array ? Array.from(d, (x) => Number(x)) : Array.from(d as ArrayLike<number>);
  }

  /** The single element of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError(`item: tensor ${fmtShape(this.shape)} has ${this.size} elements, expected 1`);
    const v = this.storage.data[this.offset];
    return typeof v === 'bigint' ? Number(v) : v;
  }

  /** Releases this tensor's reference to its storage (the memory is freed when no view remains). Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    liveTensors--;
    for (const s of scopeStack) s.delete(this);
    this._storage.release();
    if (this.gradNode) this.disposedFromOp = this.gradNode.op;
    this.gradNode = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** A new Tensor object over the same storage with another shape/strides (no autograd). */
  withLayout(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    return new Tensor(this.storage, shape, strides, offset, this.dtype);
  }

  /** Marks a leaf as trainable. Returns this. */
  requireGrad(flag = true): this {
    if (flag && !isFloatDType(this.dtype)) throw new DTypeError(`requireGrad: only float tensors can require grad (tensor #${this.id} is ${this.dtype})`);
    this.requiresGrad = flag;
    return this;
  }

  zeroGrad(): void {
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Backpropagates from this tensor. `gradient` defaults to ones for a one-element tensor. */
  backward(gradient?: Tensor): void {
    runBackward(this, gradient);
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype} ${fmtShape(this.shape)}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

// ------------------------------------------------------------------------------------------- creation
/** A zero-filled tensor. Float dtypes come from the current backend (float32, or float64 on js64). */
export function empty(shape: readonly number[], dtype: DType | 'float' = 'float', on?: Backend): Tensor {
  const s = checkShape(shape, 'empty');
  const n = shapeSize(s);
  const b = on ?? currentBackend();
  let storage: Storage;
  let dt: DType;
  if (dtype === 'float' || isFloatDType(dtype)) {
    const data = b.alloc(n);
    dt = data instanceof Float64Array ? 'float64' : 'float32';
    if (dtype !== 'float' && dtype !== dt)
      throw new DTypeError(`empty: backend '${b.info().isa}' stores floats as ${dt}, not ${dtype}`);
    storage = new Storage(data, b);
  } else {
    dt = dtype;
    storage = new Storage(allocInt(dtype, n), null);
  }
  return new Tensor(storage, s, contiguousStrides(s), 0, dt);
}

function allocInt(dtype: Exclude<DType, FloatDType>, n: number): TensorData {
  switch (dtype) {
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'uint8':
      return new Uint8Array(n);
    case 'bfloat16':
    case 'float16':
      return new Uint16Array(n);
  }
}

export const zeros = (shape: readonly number[], on?: Backend): Tensor => empty(shape, 'float', on);

/**
 * A float tensor whose contents are unspecified (the native backend skips zero-filling). Only for outputs
 * that a kernel overwrites completely; everything that accumulates must start from `empty`/`zeros`.
 */
export function uninitialized(shape: readonly number[], on?: Backend): Tensor {
  const s = checkShape(shape, 'uninitialized');
  const b = on ?? currentBackend();
  const data = b.allocUninit(shapeSize(s));
  return new Tensor(new Storage(data, b), s, contiguousStrides(s), 0, data instanceof Float64Array ? 'float64' : 'float32');
}

export function full(shape: readonly number[], value: number, on?: Backend): Tensor {
  const t = empty(shape, 'float', on);
  (t.storage.data as FloatArray).fill(value);
  return t;
}
export const ones = (shape: readonly number[], on?: Backend): Tensor => full(shape, 1, on);

/** A float tensor from numbers (copied into backend storage). shape defaults to [values.length]. */
export function tensor(values: ArrayLike<number>, shape: readonly number[] = [values.length], on?: Backend): Tensor {
  if (shapeSize(shape) !== values.length)
    throw new ShapeError(`tensor: ${values.length} values do not fill shape ${fmtShape(shape)}`);
  const t = empty(shape, 'float', on);
  (t.storage.data as FloatArray).set(values);
  return t;
}

/** An int32 tensor (token ids, indices). */
export function intTensor(values: ArrayLike<number>, shape: readonly number[] = [values.length]): Tensor {
  if (shapeSize(shape) !== values.length)
    throw new ShapeError(`intTensor: ${values.length} values do not fill shape ${fmtShape(shape)}`);
  const t = empty(shape, 'int32');
  const d = t.storage.data as Int32Array;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new DTypeError(`intTensor: value ${v} at ${i} is not an int32`);
    d[i] = v;
  }
  return t;
}

/** Copies a possibly strided tensor into a fresh contiguous typed array. */
export function gatherStrided(t: Tensor): TensorData {
  const src = t.storage.data;
  const n = t.size;
  const out = new (src.constructor as new (n: number) => TensorData)(n);
  const rank = t.rank;
  if (n === 0) return out;
  if (rank === 0) {
    (out as Float32Array)[0] = (src as Float32Array)[t.offset];
    return out;
  }
  const shape = t.shape;
  const strides = t.strides;
  const idx = new Array<number>(rank).fill(0);
  const inner = shape[rank - 1];
  const innerStride = strides[rank - 1];
  let o = 0;
  let base = t.offset;
  const s = src as Float32Array;
  const d = out as Float32Array;
  for (;;) {
    for (let j = 0, p = base; j < inner; j++, p += innerStride) d[o++] = s[p];
    let ax = rank - 2;
    for (; ax >= 0; ax--) {
      idx[ax]++;
      base += strides[ax];
      if (idx[ax] < shape[ax]) break;
      base -= strides[ax] * shape[ax];
      idx[ax] = 0;
    }
    if (ax < 0) break;
  }
  return out;
}

/** Builds the result tensor of an op and records its autograd node when any input requires grad. */
export function fromOp(
  out: Tensor,
  op: string,
  inputs: readonly (Tensor | null)[],
  backward: (g: Tensor) => (Tensor | null)[],
  saved: readonly Tensor[] = [],
): Tensor {
  let needs = false;
  if (gradEnabled) for (const x of inputs) if (x && x.requiresGrad) needs = true;
  if (!needs) {
    for (const t of saved) t.dispose();
    return out;
  }
  out.requiresGrad = true;
  out.gradNode = { op, inputs: inputs.map((x) => (x && x.requiresGrad ? x : null)), backward, saved };
  return out;
}

// ------------------------------------------------------------------------------------------- backward engine
/** Hook for accumulating gradients: set by ops/elementwise.ts (avoids an import cycle). */
export const engineHooks: {
  addInto: (dst: Tensor, src: Tensor) => void; // dst += src (dst contiguous, same shape)
  add: (a: Tensor, b: Tensor) => Tensor;
  copy: (a: Tensor) => Tensor; // contiguous copy
  onesLike: (a: Tensor) => Tensor;
} = {
  addInto: () => {
    throw new AlignkitError('autograd engine not initialised (import alignkit/tensor)');
  },
  add: () => {
    throw new AlignkitError('autograd engine not initialised');
  },
  copy: () => {
    throw new AlignkitError('autograd engine not initialised');
  },
  onesLike: () => {
    throw new AlignkitError('autograd engine not initialised');
  },
};

function runBackward(root: Tensor, gradient?: Tensor): void {
  root.live('backward');
  if (!root.requiresGrad) throw new AlignkitError(`backward: tensor #${root.id} ${fmtShape(root.shape)} does not require grad (no input of the graph requires grad, or it was built under noGrad)`);
  if (!gradient && root.size !== 1)
    throw new ShapeError(`backward: implicit gradient needs a one-element output, got ${fmtShape(root.shape)}; pass a gradient tensor`);
  if (gradient && shapeSize(gradient.shape) !== root.size)
    throw new ShapeError(`backward: gradient ${fmtShape(gradient.shape)} does not match output ${fmtShape(root.shape)}`);

  // Reverse topological order by iterative DFS over grad nodes.
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    if (i === 0) {
      if (visited.has(t)) {
        stack.pop();
        continue;
      }
      visited.add(t);
    }
    const inputs = t.gradNode ? t.gradNode.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const x = inputs[i];
      if (x && !visited.has(x)) stack.push([x, 0]);
    } else {
      stack.pop();
      order.push(t);
    }
  }

  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, gradient ? engineHooks.copy(gradient.live('backward')) : engineHooks.onesLike(root));
    for (let n = order.length - 1; n >= 0; n--) {
      const t = order[n];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t.gradNode;
      if (t.disposedFromOp)
        throw new LifetimeError(`backward: the output of ${t.disposedFromOp} (tensor #${t.id} ${fmtShape(t.shape)}) was disposed before backward reached it; keep activations alive (inside one tidy) until backward() returns`);
      if (!node) {
        // A leaf: accumulate into .grad (persistent, outside every scope).
        if (t.requiresGrad) accumulateLeaf(t, g);
        else g.dispose();
        continue;
      }
      for (const x of node.inputs)
        if (x && x.disposed)
          throw new LifetimeError(
            `backward: an input of ${node.op} (${x.disposedFromOp ? `the output of ${x.disposedFromOp}` : 'a leaf'}, tensor #${x.id} ${fmtShape(x.shape)}) was disposed before backward reached it; keep activations alive (inside one tidy) until backward() returns`,
          );
      const contributions = node.backward(g);
      if (contributions.length !== node.inputs.length)
        throw new AlignkitError(`backward of ${node.op}: returned ${contributions.length} gradients for ${node.inputs.length} inputs`);
      const seen = new Set<Tensor>();
      for (let i = 0; i < node.inputs.length; i++) {
        const x = node.inputs[i];
        let c = contributions[i];
        if (!c) continue;
        if (!x) {
          if (c !== g && !seen.has(c)) c.dispose();
          continue;
        }
        if (shapeSize(c.shape) !== x.size)
          throw new AlignkitError(`backward of ${node.op}: gradient ${fmtShape(c.shape)} for input ${fmtShape(x.shape)}`);
        // The engine owns each contribution object; alias shared ones so disposing one leaves the others.
        if (c === g || seen.has(c)) c = c.withLayout(c.shape, c.strides, c.offset);
        seen.add(c);
        const prev = grads.get(x);
        if (prev && exclusivelyOwned(prev)) {
          engineHooks.addInto(prev, c); // accumulate in place: no extra buffer
          c.dispose();
        } else if (prev) {
          const sum = engineHooks.add(prev, c);
          prev.dispose();
          c.dispose();
          grads.set(x, sum);
        } else grads.set(x, c);
      }
      g.dispose();
      if (node.saved) for (const sv of node.saved) sv.dispose();
      // Free the graph as we go (no retain_graph): saved activations become collectable by their scope.
      if (t !== root) t.gradNode = null;
    }
    root.gradNode = null;
    for (const g of grads.values()) g.dispose();
  });
}

/** True when t is the only view of its whole, contiguous storage (so it may be mutated or adopted). */
function exclusivelyOwned(t: Tensor): boolean {
  const st = t.storage;
  return st.refs === 1 && t.offset === 0 && t.isContiguous && st.data.length === t.size;
}

/** Accumulates g into leaf.grad and takes ownership of g (disposing or adopting it). */
function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.grad && !leaf.grad.disposed) {
    engineHooks.addInto(leaf.grad, g);
    g.dispose();
    return;
  }
  if (exclusivelyOwned(g)) {
    // Adopt the engine's buffer as the persistent gradient instead of copying it.
    keep(g);
    if (g.shape.length === leaf.shape.length && g.shape.every((d, i) => d === leaf.shape[i])) leaf.grad = g;
    else {
      leaf.grad = untracked(() => g.withLayout(leaf.shape, contiguousStrides(leaf.shape), 0));
      g.dispose();
    }
    return;
  }
  const copy = untracked(() => engineHooks.copy(g));
  g.dispose();
  leaf.grad = copy.shape.length === leaf.shape.length && copy.shape.every((d, i) => d === leaf.shape[i]) ? copy : untracked(() => {
    const v = copy.withLayout(leaf.shape, contiguousStrides(leaf.shape), 0);
    copy.dispose();
    return v;
  });
}
