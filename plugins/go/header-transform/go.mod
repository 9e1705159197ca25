module github.com/wasmgate/wasmgate/plugins/go/header-transform

go 1.24

require github.com/wasmgate/wasmgate/plugin-sdk/go v0.0.0

replace github.com/wasmgate/wasmgate/plugin-sdk/go => ../../../plugin-sdk/go
