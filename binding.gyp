{
  "targets": [
    {
      "target_name": "hardsnap",
      "sources": ["native/hardsnap.c", "native/xxh64.c", "native/watch.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11",
                 "-include", "<(module_root_dir)/native/glibc-compat.h"],
      "defines": ["_GNU_SOURCE", "_FILE_OFFSET_BITS=64", "NAPI_VERSION=8"]
    }
  ]
}
