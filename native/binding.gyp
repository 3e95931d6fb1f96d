# The batched UDP addon (src/dns/udp-batch.ts loads it; fedns falls back to node:dgram without it).
# Built by `npm run build` with the node-gyp that npm bundles; a failed build is not an error.
{
  "targets": [
    {
      "target_name": "fedns_udp",
      "sources": ["fedns_udp.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
