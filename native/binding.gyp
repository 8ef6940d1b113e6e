{
  "targets": [
    {
      "target_name": "mintfs_native",
      "sources": [
        "addon/addon.c",
        "addon/session.c",
        "addon/mint.c",
        "addon/reader.c",
        "addon/hmac-sha256.c",
        "addon/peer.c",
        "addon/uring.c"
      ],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "<!@(pkg-config fuse3 --cflags-only-other)"],
      "include_dirs": ["<!@(pkg-config fuse3 --cflags-only-I | sed 's/-I//g')"],
      "libraries": ["<!@(pkg-config fuse3 --libs)", "<!@(pkg-config libsodium --libs)", "<!@(pkg-config liburing --libs)"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
