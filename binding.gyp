{
  "targets": [
    {
      "target_name": "arrival",
      "sources": ["native/arrival.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["OS!='linux'", {"type": "none", "sources!": ["native/arrival.c"]}]
      ]
    }
  ],
  "conditions": [
    ["OS=='linux'", {
      "targets": [
        {
          "target_name": "sockdiag",
          "sources": ["native/sockdiag.c"],
          "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11"]
        }
      ]
    }]
  ]
}
