{
  "targets": [
    {
      "target_name": "alignkit_native",
      "sources": [
        "src/runtime.cc",
        "src/gemm.cc",
        "src/attention.cc",
        "src/norms.cc",
        "src/linear_logprob.cc",
        "src/elementwise.cc",
        "src/layout.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-fopenmp-simd", "-Wall", "-Wno-unused-function"],
      "conditions": [
        ["OS=='mac'", {"xcode_settings": {"GCC_ENABLE_CPP_EXCEPTIONS": "YES", "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"]}}]
      ]
    }
  ]
}
