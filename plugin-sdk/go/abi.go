//go:build wasip1

package wasmgate

// The component model's canonical ABI, by hand: what crosses the boundary is linear-memory
// addresses (i32), lengths and scalars.
//
// Memory rules:
//   - The host copies strings and lists into guest memory through cabi_realloc, which hands out
//     blocks of a static scratch area: it must not allocate from Go's heap, because an
//     allocation may start a garbage collection, the collector reads the clock through WASI, and
//     the component model traps any call out of an instance while the host is writing into it.
//     The wrapper that made the import call copies what it needs into Go values and then
//     releases the blocks of that call.
//   - Arguments the guest passes to the host (strings, lists) are Go memory kept alive with
//     runtime.KeepAlive until the import returns.
//   - What an export returns is Go memory kept referenced until the next export call. There are
//     no cabi_post_* functions, for the same reason as above: Go code there could call out.

import (
	"encoding/binary"
	"unsafe"
)

// scratchSize is the static area for what the host hands over in one call. A call that needs
// more (a very large body, say) gets heap memory, with the small risk described above.
const scratchSize = 1 << 20

// maxBlocks is how many host allocations one call may make before the block list must grow.
const maxBlocks = 4096

// block is one allocation made for the host.
type block struct {
	addr uint32
	buf  []byte
	// used is how much of the scratch area was in use before this block.
	used uint32
}

var (
	// scratch is where cabi_realloc allocates; scratchUsed is how much of it is in use.
	scratch     [scratchSize]byte
	scratchUsed uint32
	// pins holds the blocks the host allocated during the current call, newest last.
	pins = make([]block, 0, maxBlocks)
	// results holds what the last export returned, until the next export call.
	results [][]byte
	// retArea is the return area of import calls (static: never moves).
	retArea [8]uint64
)

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	if newSize == 0 {
		return align
	}
	base := addr(unsafe.Pointer(&scratch[0]))
	start := (base+scratchUsed+align-1)&^(align-1) - base
	used := scratchUsed
	var buf []byte
	if start+newSize <= scratchSize {
		buf = scratch[start : start+newSize : start+newSize]
		scratchUsed = start + newSize
	} else {
		heap := make([]byte, newSize+align)
		off := (align - addr(unsafe.Pointer(&heap[0]))%align) % align
		buf = heap[off : off+newSize]
	}
	if oldPtr != 0 {
		if old := find(oldPtr); old != nil {
			copy(buf, old[:min(oldSize, uint32(len(old)))])
		}
	}
	at := addr(unsafe.Pointer(&buf[0]))
	pins = append(pins, block{at, buf, used})
	return at
}

// find returns the pinned block that starts at addr.
func find(addr uint32) []byte {
	for i := len(pins) - 1; i >= 0; i-- {
		if pins[i].addr == addr {
			return pins[i].buf
		}
	}
	return nil
}

// unpin releases the blocks allocated since mark.
func unpin(mark int) {
	if mark < len(pins) {
		scratchUsed = pins[mark].used
	}
	clear(pins[mark:])
	pins = pins[:mark]
}

// addr is the linear-memory address of p.
func addr(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

// ret is the import return area as bytes.
func ret() []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&retArea[0])), len(retArea)*8) }

func u32(b []byte, at int) uint32 { return binary.LittleEndian.Uint32(b[at:]) }
func u64(b []byte, at int) uint64 { return binary.LittleEndian.Uint64(b[at:]) }

// liftBytes copies the list<u8> (or string bytes) whose (ptr, len) is at b[at:].
func liftBytes(b []byte, at int) []byte {
	ptr, n := u32(b, at), u32(b, at+4)
	if n == 0 {
		return []byte{}
	}
	src := find(ptr)
	if src == nil {
		panic("wasmgate: host returned memory that was not allocated by cabi_realloc")
	}
	return append([]byte(nil), src[:n]...)
}

// liftString copies the string whose (ptr, len) is at b[at:].
func liftString(b []byte, at int) string { return string(liftBytes(b, at)) }

// liftOptionString lifts option<string> with its discriminant at b[at] and payload at at+4.
func liftOptionString(b []byte, at int) (string, bool) {
	if b[at] == 0 {
		return "", false
	}
	return liftString(b, at+4), true
}

// liftStrings lifts list<string> whose (ptr, len) is at b[at:].
func liftStrings(b []byte, at int) []string {
	n := int(u32(b, at+4))
	if n == 0 {
		return nil
	}
	elems := find(u32(b, at))
	out := make([]string, n)
	for i := range out {
		out[i] = liftString(elems, i*8)
	}
	return out
}

// liftHeaders lifts list<tuple<string, string>> whose (ptr, len) is at b[at:].
func liftHeaders(b []byte, at int) []Header {
	n := int(u32(b, at+4))
	if n == 0 {
		return nil
	}
	elems := find(u32(b, at))
	out := make([]Header, n)
	for i := range out {
		out[i] = Header{Name: liftString(elems, i*16), Value: liftString(elems, i*16+8)}
	}
	return out
}

// liftResultUnit lifts result<_, string> from the return area.
func liftResultUnit(b []byte) error {
	if b[0] == 0 {
		return nil
	}
	return hostError(liftString(b, 4))
}

// str is a string's address and length, for passing to the host (keep s alive across the call).
func str(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

// bytesArg is a byte slice's address and length, for passing to the host.
func bytesArg(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

// optStr is option<string> flattened: discriminant, address, length.
func optStr(s *string) (uint32, unsafe.Pointer, uint32) {
	if s == nil {
		return 0, nil, 0
	}
	p, n := str(*s)
	return 1, p, n
}

// out builds an export's result in memory that stays pinned until cabi_post.
type out struct{ buf []byte }

// newOut allocates an export return area of size bytes (8-byte aligned).
func newOut(size int) *out {
	words := make([]uint64, (size+7)/8)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	results = append(results, buf)
	return &out{buf}
}

func (o *out) addr() uint32            { return addr(unsafe.Pointer(&o.buf[0])) }
func (o *out) u8(at int, v uint8)      { o.buf[at] = v }
func (o *out) u16(at int, v uint16)    { binary.LittleEndian.PutUint16(o.buf[at:], v) }
func (o *out) u32(at int, v uint32)    { binary.LittleEndian.PutUint32(o.buf[at:], v) }
func (o *out) bool(at int, v bool)     { o.u8(at, b2u(v)) }
func (o *out) bytes(at int, v []byte)  { o.u32(at, keep(v)); o.u32(at+4, uint32(len(v))) }
func (o *out) string(at int, v string) { o.bytes(at, []byte(v)) }
func (o *out) headers(at int, h []Header) {
	o.u32(at, emptyList)
	o.u32(at+4, uint32(len(h)))
	if len(h) == 0 {
		return
	}
	list := newOut(16 * len(h))
	for i, f := range h {
		list.string(i*16, f.Name)
		list.string(i*16+8, f.Value)
	}
	o.u32(at, list.addr())
}

// emptyList is the address given for an empty list: any address aligned for every element type.
const emptyList = 8

// keep pins v until cabi_post and returns its address.
func keep(v []byte) uint32 {
	if len(v) == 0 {
		return emptyList
	}
	results = append(results, v)
	return addr(unsafe.Pointer(&v[0]))
}

// releaseResults drops what the previous export returned (the host has read it), at the start
// of the next export call.
func releaseResults() {
	clear(results)
	results = results[:0]
}

func b2u(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// adapterArenaSize is the memory given to the WASI preview 1 adapter (its state and its stack).
const adapterArenaSize = 256 << 10

// adapterArena is where the WASI adapter keeps its state and stack. The adapter would otherwise
// take memory with memory.grow, which Go's heap then grows over (Go assumes it owns all memory
// above its data), or through cabi_realloc, which Go cannot run before its runtime is
// initialized, and initializing the runtime already calls WASI. `wasmgate plugin componentize`
// finds this static area by its marker and gives the adapter a bump allocator over it.
var adapterArena = struct {
	marker [32]byte
	space  [adapterArenaSize]byte
}{marker: [32]byte{'w', 'a', 's', 'm', 'g', 'a', 't', 'e', ':', 'a', 'd', 'a', 'p', 't', 'e', 'r', '-', 'a', 'r', 'e', 'n', 'a', ':', 'v', '1', ':', '0', '0', '0', '0', '0', '0'}}

// keepAdapterArena keeps the arena in the binary (the linker drops unreferenced globals).
//
//go:noinline
func keepAdapterArena() byte { return adapterArena.marker[0] }
