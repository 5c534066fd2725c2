// The addon runtime: natively owned buffers freed deterministically, thread and ISA controls.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { nativeAddon, nativeAddonPath } from '../../src/native/addon.ts';
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

  it('large buffers (mapped from the OS) are zero-filled, fresh or reused, uninitialized ones included', (t) => {
    if (!nativeAddon) return t.skip('native addon not built');
    const n = (3 << 20) / 4; // 3 MiB: above the 1 MiB mapping threshold
    const a = new Float32Array(nativeAddon.alloc(n * 4));
    assert.ok(a.every((v) => v === 0), 'fresh mapping is zero');
    a.fill(3);
    nativeAddon.free(a.buffer);
    const b = new Float32Array(nativeAddon.alloc(n * 4));
    assert.ok(b.every((v) => v === 0), 'reused memory is zeroed');
    const u = new Float32Array(nativeAddon.alloc(n * 4, true));
    u.fill(1); // writable
    assert.equal(u[n - 1], 1);
    nativeAddon.free(b.buffer);
    nativeAddon.free(u.buffer);
  });

  it('freed large buffers go back to the OS (RSS falls) instead of fragmenting the malloc heap', (t) => {
    if (!nativeAddon) return t.skip('native addon not built');
    if (!existsSync('/proc/self/status')) return t.skip('needs /proc (Linux)');
    // In a child with the pool off, so every free really releases. glibc raises its mmap threshold to the size
    // of the largest mapped block freed (8 MiB here); 2 MiB blocks would then come from its heap, and freeing
    // all but the topmost would leave the RSS where it was.
    const code = `
      import { createRequire } from 'node:module';
      import { readFileSync } from 'node:fs';
      const addon = createRequire(import.meta.url)(${JSON.stringify(nativeAddonPath)});
      const rss = () => Number(/^VmRSS:\\s+(\\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
      addon.free(addon.alloc(8 << 20));
      const bufs = Array.from({ length: 64 }, () => new Float32Array(addon.alloc(2 << 20)).fill(1));
      const full = rss();
      for (const b of bufs.slice(0, -1)) addon.free(b.buffer);
      console.log(JSON.stringify({ full, after: rss() }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, ALIGNKIT_POOL_MB: '0' } });
    assert.equal(r.status, 0, r.stderr);
    const { full, after } = JSON.parse(r.stdout.trim()) as { full: number; after: number };
    assert.ok(full - after > 100, `RSS ${full.toFixed(0)} MiB -> ${after.toFixed(0)} MiB after freeing 126 MiB`);
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
  it('back-to-back parallel regions of alternating task counts: every task runs exactly once, nothing hangs', (t) => {
    if (!nativeAddon) return t.skip('native addon not built');
    // Exactly-once execution across regions whose task counts alternate. (The bug this guards against —
    // publishing a region with MORE tasks than the one just finished let a late worker claim a phantom task
    // on the old region's word: a hang, or a task run twice — needs a worker preempted between two loads, so
    // it shows up on an oversubscribed machine, not deterministically here; see ThreadPool::Run.) A block
    // negated twice by one call would end with the wrong sign.
    const addon = nativeAddon;
    const threads = Math.max(2, addon.info().threads);
    const prev = addon.info().threads;
    addon.setThreads(threads);
    try {
      const grain = 65536; // scaleInPlace's parallel grain (kGrain * 4)
      const small = new Float32Array(2 * grain).fill(1); // 2 tasks
      const large = new Float32Array(threads * 4 * grain).fill(1); // threads * 4 tasks
      const rounds = 4000;
      for (let i = 0; i < rounds; i++) {
        addon.scaleInPlace(small, small.length, -1);
        addon.scaleInPlace(large, large.length, -1);
      }
      const want = rounds % 2 === 0 ? 1 : -1;
      for (const [name, buf] of [['small', small], ['large', large]] as const) {
        for (let i = 0; i < buf.length; i += 4096) assert.equal(buf[i], want, `${name}[${i}]`);
      }
    } finally {
      addon.setThreads(prev);
    }
  });
});
