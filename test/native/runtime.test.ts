// The addon runtime: natively owned buffers freed deterministically, thread and ISA controls.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon } from '../../src/native/addon.ts';
import { nativeBackend } from '../../src/backend/index.ts';
import * as T from '../../src/tensor/index.ts';

describe('native runtime', () => {
  it('alloc gives zeroed memory that free() releases at once, and views go empty', (t) => {
    if (!nativeAddon) return t.skip('native addon not built');
    const before = nativeAddon.memoryStats();
    const buf = new Float32Array(nativeAddon.alloc(1001 * 4));
    assert.equal(buf.length, 1001);
    assert.ok(buf.every((v) => v === 0));
    const during = nativeAddon.memoryStats();
    assert.equal(during.liveBuffers, before.liveBuffers + 1);
    assert.equal(during.liveBytes - before.liveBytes, 4032); // rounded up to 64 bytes
    const view = buf.subarray(10, 20);
    nativeAddon.free(buf.buffer);
    assert.equal(buf.length, 0);
    assert.equal(view.length, 0);
    assert.equal(nativeAddon.memoryStats().liveBytes, before.liveBytes);
    nativeAddon.free(buf.buffer); // idempotent
    assert.throws(() => nativeAddon!.free(new ArrayBuffer(8)), /not allocated by alignkit/);
  });

  it('freed buffers are pooled by size and come back zero-filled', (t) => {
    if (!nativeAddon) return t.skip('native addon not built');
    const a = new Float32Array(nativeAddon.alloc(4096 * 4));
    a.fill(7);
    const pooledBefore = nativeAddon.memoryStats().pooledBytes;
    nativeAddon.free(a.buffer);
    assert.equal(nativeAddon.memoryStats().pooledBytes, pooledBefore + 4096 * 4);
    const b = new Float32Array(nativeAddon.alloc(4096 * 4));
    assert.equal(nativeAddon.memoryStats().pooledBytes, pooledBefore, 'reused from the pool');
    assert.ok(b.every((v) => v === 0), 'reused memory is zeroed');
    nativeAddon.free(b.buffer);
  });

  it('disposing a tensor returns its native memory immediately', (t) => {
    if (!nativeAddon || !nativeBackend) return t.skip('native addon not built');
    const before = nativeAddon.memoryStats().liveBytes;
    const x = T.zeros([256, 256], nativeBackend);
    assert.ok(nativeAddon.memoryStats().liveBytes >= before + 256 * 256 * 4);
    const v = T.transpose(x);
    x.dispose();
    assert.ok(nativeAddon.memoryStats().liveBytes >= before + 256 * 256 * 4, 'a live view keeps the storage');
    v.dispose();
    assert.equal(nativeAddon.memoryStats().liveBytes, before);
  });

  it('thread count and ISA can be changed and restored', (t) => {
    if (!nativeAddon) return t.skip('native addon not built');
    const info = nativeAddon.info();
    assert.ok(info.threads >= 1);
    assert.ok(['avx512', 'avx2', 'portable'].includes(info.detectedIsa));
    nativeAddon.setThreads(1);
    assert.equal(nativeAddon.info().threads, 1);
    assert.equal(nativeAddon.setIsa('portable'), 'portable');
    assert.equal(nativeAddon.setIsa('avx512'), info.detectedIsa === 'avx512' ? 'avx512' : info.detectedIsa, 'clamped to what the CPU supports');
    assert.throws(() => nativeAddon!.setIsa('sse' as 'avx2'), /unknown ISA/);
    nativeAddon.setIsa(info.isa as 'avx2');
    nativeAddon.setThreads(info.threads);
    assert.deepEqual(nativeAddon.info(), info);
  });
});
