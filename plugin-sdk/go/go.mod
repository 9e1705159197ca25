module github.com/wasmgate/wasmgate/plugin-sdk/go

go 1.24
