#!/usr/bin/env python3
"""Generates the reference files in test/fixtures-io/ with the REFERENCE implementations:
safetensors (the Rust-backed `safetensors` package), huggingface_hub's sharded writer, and llama.cpp's
gguf-py (writer, quantisers, dequantisers), with torch/numpy for the expected values.

The committed outputs are what the TypeScript tests compare against; the tests never need Python.
Regenerate (deterministic) with the packages installed:
    PYTHONPATH=<dir with safetensors, gguf, huggingface_hub> python3 test/fixtures-io/make_fixtures.py
"""
import json
import os
import shutil
import struct

import numpy as np
import torch
from safetensors.torch import save_file
from safetensors.numpy import save_file as np_save_file
import gguf
from huggingface_hub import save_torch_state_dict

HERE = os.path.dirname(os.path.abspath(__file__))
g = torch.Generator().manual_seed(1234)
rs = np.random.RandomState(1234)


def randn(*shape):
    return torch.randn(*shape, generator=g)


def f32_specials():
    # NaN, +-inf, -0, smallest subnormal, largest finite, values that round differently to bf16 / f16.
    bits = [0x7FC00000, 0x7F800001, 0x7F800000, 0xFF800000, 0x80000000, 0x00000001, 0x7F7FFFFF,
            0x3F808000, 0x3F818000, 0x3F80C000, 0x477FF000, 0x477FE000, 0x33800000, 0x33000001, 0xC7800000]
    return torch.tensor(np.array(bits, dtype=np.uint32).view(np.float32))


def patterns16():
    edges = [0x0000, 0x0001, 0x0002, 0x03FF, 0x0400, 0x0401, 0x3C00, 0x7BFF, 0x7C00, 0x7C01, 0x7D00, 0x7E00, 0x7FFF,
             0x7F7F, 0x7F80, 0x7F81, 0x7FC0, 0x8000, 0x8001, 0x83FF, 0xFBFF, 0xFC00, 0xFC01, 0xFE00, 0xFF80, 0xFFC1, 0xFFFF]
    vals = sorted(set(edges + list(range(0, 65536, 41))))
    return torch.tensor(np.array(vals, dtype=np.uint16).view(np.int16))


def bits_list(t):
    """float32 bit patterns of t converted to float32 by torch (the expected result of loading as float32)."""
    return [int(b) for b in t.to(torch.float32).contiguous().view(torch.int32).numpy().astype(np.uint32)]


# ---------------------------------------------------------------- safetensors: every dtype, read side
def mixed():
    f32 = torch.cat([f32_specials(), randn(15)]).reshape(3, 10)
    bf16 = torch.cat([f32_specials()[:9], randn(3)]).to(torch.bfloat16).reshape(4, 3)
    f16 = torch.cat([f32_specials()[:7], randn(7)]).to(torch.float16).reshape(2, 7)
    t = {
        'f32': f32,
        'bf16': bf16,
        'f16': f16,
        # a spread of 16-bit patterns (every exponent, NaN/inf/subnormal edges), with torch's float32 values
        'f16_many': patterns16().view(torch.float16),
        'bf16_many': patterns16().view(torch.bfloat16),
        'f64': torch.tensor([[1.5, -2.25], [1e300, 5e-324]], dtype=torch.float64),
        'i32': torch.tensor([-2**31, 2**31 - 1, 0, -1, 7], dtype=torch.int32),
        'i64': torch.tensor([[-2**63, 2**63 - 1, 2**53 + 1], [0, -1, 123456789012]], dtype=torch.int64),
        'i16': torch.tensor([-32768, 32767, -5], dtype=torch.int16),
        'i8': torch.tensor([-128, 127, 0, -3], dtype=torch.int8),
        'u8': torch.tensor([0, 1, 2, 127, 128, 255], dtype=torch.uint8),
        'u16': torch.tensor([0, 65535], dtype=torch.uint16),
        'u32': torch.tensor([0, 4294967295], dtype=torch.uint32),
        'u64': torch.tensor([0, 2**40 + 3], dtype=torch.uint64),
        'bool': torch.tensor([True, False, True, True, False]),
        'f8_e4m3': torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn),
        'f8_e5m2': torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e5m2),
        'empty': torch.zeros(0, 4),
        'scalar': torch.tensor(3.25),
    }
    # torch's float32 conversions of the 16- and 8-bit float tensors, stored alongside as F32
    for k in ['f16_many', 'bf16_many', 'f8_e4m3', 'f8_e5m2', 'f16', 'bf16']:
        t['expected.' + k] = t[k].to(torch.float32)
    save_file(t, os.path.join(HERE, 'ref_mixed.safetensors'), metadata={'format': 'pt', 'note': 'mixed dtypes'})
    expected = {}
    for k, v in t.items():
        if k.startswith('expected.') or k.endswith('_many') or k.startswith('f8'):
            expected[k] = {'shape': list(v.shape)}
            continue
        e = {'shape': list(v.shape)}
        if v.dtype in (torch.int64, torch.uint64, torch.uint32, torch.int32, torch.int16, torch.int8, torch.uint8, torch.uint16, torch.bool):
            e['ints'] = [str(int(x)) for x in v.flatten().tolist()]
        elif v.dtype == torch.float64:
            e['f64'] = [repr(float(x)) for x in v.flatten().tolist()]
        if v.dtype not in (torch.int64, torch.uint64, torch.float64, torch.uint32):
            e['f32bits'] = bits_list(v.flatten())
        elif v.dtype == torch.float64:
            e['f32bits'] = bits_list(v.flatten())
        expected[k] = e
    with open(os.path.join(HERE, 'ref_mixed.expected.json'), 'w') as f:
        json.dump(expected, f, separators=(',', ':'))


# ---------------------------------------------------------------- safetensors: writer byte-identity
def writer():
    t = {
        'model.layers.0.w': randn(3, 5),
        'model.embed': randn(4, 3).to(torch.bfloat16),
        'lm_head.weight': randn(2, 7).to(torch.float16),
        'z.ids': torch.tensor([1, -2, 3, 4, 2**31 - 1], dtype=torch.int32),
        'pos': torch.tensor([[0, 1, 2], [2**62, -2**62, 5]], dtype=torch.int64),
        'mask': torch.tensor([0, 1, 255, 3, 4, 5], dtype=torch.uint8),
        'double': torch.tensor([[1.0, 2.5], [-3.0, 1e-310]], dtype=torch.float64),
        'a.empty': torch.zeros(0, 4),
        'b.scalar': torch.tensor(-1.5),
        'unicodé.名前': torch.tensor([1.0, 2.0]),
    }
    save_file(t, os.path.join(HERE, 'ref_writer.safetensors'), metadata={'format': 'pt'})
    # float32 -> bf16 / f16 rounding as torch does it (the writer's dtype option must agree bit for bit)
    src = torch.cat([f32_specials(), randn(49) * 1000, torch.tensor([65519.0, 65520.0, 1e-8, -6.1e-5, 2.9e-8])])
    save_file({'src': src, 'bf16': src.to(torch.bfloat16), 'f16': src.to(torch.float16)},
              os.path.join(HERE, 'ref_f32_to_half.safetensors'), metadata={'format': 'pt'})


# ---------------------------------------------------------------- safetensors: sharded checkpoint
def sharded():
    d = os.path.join(HERE, 'sharded')
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    sd = {
        'model.embed_tokens.weight': randn(10, 8),          # 320 bytes
        'model.layers.0.self_attn.q_proj.weight': randn(8, 8),  # 256
        'model.layers.0.mlp.up_proj.weight': randn(12, 8),  # 384 -> over the limit: its own shard
        'model.layers.0.input_layernorm.weight': randn(8),  # 32
        'model.norm.weight': randn(8).to(torch.bfloat16),   # 16
        'lm_head.weight': randn(10, 8),                     # 320
    }
    max_shard = 350
    save_torch_state_dict(sd, d, max_shard_size=max_shard)
    with open(os.path.join(HERE, 'sharded.expected.json'), 'w') as f:
        json.dump({'order': list(sd.keys()), 'max_shard_size': max_shard,
                   'bits': {k: bits_list(v.flatten()) for k, v in sd.items()},
                   'shapes': {k: list(v.shape) for k, v in sd.items()}}, f, separators=(',', ':'))


# ---------------------------------------------------------------- GGUF: metadata of every type, quantised tensors
def gguf_ref():
    path = os.path.join(HERE, 'ref_quant.gguf')
    w = gguf.GGUFWriter(path, 'llama')
    w.add_uint8('t.u8', 200)
    w.add_int8('t.i8', -100)
    w.add_uint16('t.u16', 60000)
    w.add_int16('t.i16', -30000)
    w.add_uint32('t.u32', 4000000000)
    w.add_int32('t.i32', -2000000000)
    w.add_float32('t.f32', 0.1)
    w.add_uint64('t.u64', 2**64 - 1)
    w.add_int64('t.i64', -2**63)
    w.add_float64('t.f64', 0.1)
    w.add_bool('t.bool', True)
    w.add_string('t.str', 'héllo ▁wörld\n')
    w.add_string('t.empty', '')
    w.add_key_value('t.arr_i32', [1, -2, 3], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
    w.add_key_value('t.arr_f32', [0.5, -1.25], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.FLOAT32)
    w.add_key_value('t.arr_u8', [0, 255], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT8)
    w.add_key_value('t.arr_u64', [0, 2**64 - 1], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT64)
    w.add_key_value('t.arr_bool', [True, False, True], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.BOOL)
    w.add_key_value('t.arr_str', ['a', '', 'ü▁'], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.STRING)
    w.add_key_value('t.arr_nested', [[1, 2], [3]], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.ARRAY)

    expected = {}

    def add(name, arr, qtype=None):
        if qtype is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)

    x = lambda *s: rs.standard_normal(s).astype(np.float32)
    add('f32', x(3, 5))
    add('f16', x(2, 7).astype(np.float16))
    add('bf16', x(4, 3), gguf.GGMLQuantizationType.BF16)
    add('q8_0', x(3, 64), gguf.GGMLQuantizationType.Q8_0)
    add('q4_0', x(2, 96), gguf.GGMLQuantizationType.Q4_0)
    add('q4_1', x(2, 32), gguf.GGMLQuantizationType.Q4_1)
    add('q5_0', x(2, 64), gguf.GGMLQuantizationType.Q5_0)
    add('q5_1', x(1, 32), gguf.GGMLQuantizationType.Q5_1)
    add('i32', np.array([1, -2, 2**31 - 1], dtype=np.int32))
    add('i8', np.array([[-128, 5], [7, 127]], dtype=np.int8))
    add('f64', np.array([1.5, -1e300], dtype=np.float64))
    add('cube', x(2, 3, 4))
    # a K-quant we do not dequantise: raw bytes for one 256-element block of Q5_K
    w.add_tensor('blk.0.attn_q.weight', rs.randint(0, 256, size=(1, 176)).astype(np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q5_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    r = gguf.GGUFReader(path)
    for t in r.tensors:
        if t.tensor_type == gguf.GGMLQuantizationType.Q5_K:
            continue
        shape = [int(d) for d in reversed(t.shape.tolist())]
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F64,
                             gguf.GGMLQuantizationType.I32, gguf.GGMLQuantizationType.I8):
            deq = np.asarray(t.data).astype(np.float32).reshape(shape)
        else:
            deq = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        expected[t.name] = np.ascontiguousarray(deq)
    np_save_file(expected, os.path.join(HERE, 'ref_quant.expected.safetensors'), metadata={'format': 'np'})

    # the same with a non-default alignment (general.alignment = 64)
    path64 = os.path.join(HERE, 'ref_align64.gguf')
    w = gguf.GGUFWriter(path64, 'llama')
    w.add_custom_alignment(64)
    w.add_tensor('a', np.arange(5, dtype=np.float32))
    w.add_tensor('b', np.arange(6, dtype=np.float32).reshape(2, 3))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == '__main__':
    mixed()
    writer()
    sharded()
    gguf_ref()
    total = 0
    for root, _, files in os.walk(HERE):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    print('fixtures total bytes', total)
