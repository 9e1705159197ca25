//go:build wasip1

package wasmgate

// The handler interface's exports (metadata, configure and the phases), dispatching to the
// registered plugin. There are no cabi_post_* functions (see abi.go).

// plugin is the registered plugin, at the start of an export call.
func plugin() *handlers {
	releaseResults()
	if registered == nil || keepAdapterArena() == 0 {
		panic("wasmgate: no plugin registered; call wasmgate.Register in an init function")
	}
	return registered
}

// takeArg copies a string the host lowered into guest memory for an export, and unpins it.
func takeArg(ptr, n uint32) string {
	if n == 0 {
		return ""
	}
	s := string(find(ptr)[:n])
	unpin(0)
	return s
}

//go:wasmexport wasmgate:plugin/handler@0.1.0#metadata
func exportMetadata() uint32 {
	info := plugin().info
	o := newOut(24)
	o.string(0, info.Version)
	o.u32(8, uint32(info.Priority))
	o.u8(12, uint8(info.Phases))
	o.bool(13, info.FailClosed)
	o.bool(14, info.NoConsumer)
	o.string(16, info.schema)
	return o.addr()
}

//go:wasmexport wasmgate:plugin/handler@0.1.0#configure
func exportConfigure(id uint64, ptr, n uint32) uint32 {
	needs, err := plugin().configure(id, takeArg(ptr, n))
	o := newOut(12)
	if err != nil {
		o.u8(0, 1)
		o.string(4, err.Error())
	} else {
		o.bool(4, needs.RequestBody)
	}
	return o.addr()
}

// action lays out result<action, string>.
func action(a Action, err error) uint32 {
	o := newOut(28)
	switch {
	case err != nil:
		o.u8(0, 1)
		o.string(4, err.Error())
	case a.respond != nil:
		o.u8(4, 1)
		o.u16(8, a.respond.Status)
		o.headers(12, a.respond.Headers)
		o.bytes(20, a.respond.Body)
	}
	return o.addr()
}

// unit lays out result<_, string>.
func unit(err error) uint32 {
	o := newOut(12)
	if err != nil {
		o.u8(0, 1)
		o.string(4, err.Error())
	}
	return o.addr()
}

//go:wasmexport wasmgate:plugin/handler@0.1.0#rewrite
func exportRewrite(id uint64) uint32 { return action(plugin().rewrite(id)) }

//go:wasmexport wasmgate:plugin/handler@0.1.0#access
func exportAccess(id uint64) uint32 { return action(plugin().access(id)) }

//go:wasmexport wasmgate:plugin/handler@0.1.0#header-filter
func exportHeaderFilter(id uint64) uint32 { return unit(plugin().headerFilter(id)) }

//go:wasmexport wasmgate:plugin/handler@0.1.0#body-filter
func exportBodyFilter(id uint64, ptr, n uint32, end uint32) uint32 {
	var chunk []byte
	if n > 0 {
		chunk = append([]byte(nil), find(ptr)[:n]...)
		unpin(0)
	}
	replaced, some, err := plugin().bodyFilter(id, chunk, end != 0)
	o := newOut(16)
	switch {
	case err != nil:
		o.u8(0, 1)
		o.string(4, err.Error())
	case some:
		o.u8(4, 1)
		o.bytes(8, replaced)
	}
	return o.addr()
}

//go:wasmexport wasmgate:plugin/handler@0.1.0#log
func exportLog(id uint64) uint32 { return unit(plugin().log(id)) }
