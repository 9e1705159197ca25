//! Core wasm modules made into components: what stock Go builds (`GOOS=wasip1 GOARCH=wasm
//! -buildmode=c-shared`) is a WASI preview 1 core module whose imports and exports follow the
//! canonical ABI of `wit/plugin.wit` (see `plugin-sdk/go`). Wrapping it is the usual two steps:
//! embed the `plugin` world as metadata, then encode a component with the WASI preview 1
//! reactor adapter. `wasmgate plugin componentize` does it ahead of time; the loader does it for
//! a core module found in the plugins directory.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

/// The plugin world, as plugins are built against it, and the packages it uses.
const PLUGIN_WIT: &str = include_str!("../../../wit/plugin.wit");
const DEPS: [(&str, &str); 2] = [
    ("wit/deps/metrics/metrics.wit", include_str!("../../../wit/deps/metrics/metrics.wit")),
    ("wit/deps/log/log.wit", include_str!("../../../wit/deps/log/log.wit")),
];

/// Marks the Go SDK's static memory for the WASI adapter (`adapterArena` in `plugin-sdk/go`):
/// 32 bytes (none zero, as Go's linker leaves runs of zeros out of data segments), then the area.
const ARENA_MARKER: &[u8; 32] = b"wasmgate:adapter-arena:v1:000000";
/// The area after the marker (`adapterArenaSize`). Its first 8 bytes hold the bump allocator's
/// next free address (0 before the first allocation).
const ARENA_SIZE: u32 = 256 << 10;

/// True for a core wasm module (version 1), as opposed to a component.
pub(crate) fn is_core_module(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm\x01\0\0\0")
}

/// The component for a core module that implements the `plugin` world over WASI preview 1.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    if !is_core_module(core) {
        return Err("not a core wasm module (a component needs no componentize)".into());
    }
    let mut resolve = Resolve::default();
    for (path, wit) in DEPS {
        resolve.push_str(path, wit).map_err(|e| format!("{e:#}"))?;
    }
    let package = resolve.push_str("wit/plugin.wit", PLUGIN_WIT).map_err(|e| format!("{e:#}"))?;
    let world = resolve.select_world(&[package], Some("plugin")).map_err(|e| format!("{e:#}"))?;
    let mut module = match find_arena(core)? {
        Some(arena) => {
            with_adapter_realloc(core, arena).map_err(|e| format!("cannot add the adapter's allocator: {e}"))?
        }
        None => core.to_vec(),
    };
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)
        .map_err(|e| format!("cannot embed the plugin world: {e:#}"))?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|e| e.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER))
        .and_then(|e| e.encode())
        .map_err(|e| format!("cannot make a component of it (does it implement wit/plugin.wit?): {e:#}"))
}

/// The address of the SDK's adapter arena marker in the module's data, if it has one.
fn find_arena(core: &[u8]) -> Result<Option<u32>, String> {
    let mut found = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(core) {
        let wasmparser::Payload::DataSection(reader) = payload.map_err(|e| format!("not valid wasm: {e}"))? else {
            continue;
        };
        for data in reader {
            let data = data.map_err(|e| format!("not valid wasm: {e}"))?;
            let wasmparser::DataKind::Active { offset_expr, .. } = data.kind else { continue };
            let Ok(wasmparser::Operator::I32Const { value }) = offset_expr.get_operators_reader().read() else {
                continue;
            };
            let hits = data.data.windows(ARENA_MARKER.len()).enumerate().filter(|(_, w)| w == ARENA_MARKER);
            found.extend(hits.map(|(at, _)| value as u32 + at as u32));
        }
    }
    match found[..] {
        [] => Ok(None),
        [at] => Ok(Some(at)),
        _ => Err("the adapter arena marker is in the module more than once".into()),
    }
}

/// The bytes of `core` in `range` (wasmparser gives 64-bit ranges).
fn bytes(core: &[u8], range: std::ops::Range<u64>) -> &[u8] {
    &core[range.start as usize..range.end as usize]
}

/// The module with one more export, `cabi_realloc_adapter`: a bump allocator over the arena at
/// `marker`, which wit-component gives the WASI adapter for its state and stack instead of
/// `memory.grow` or the module's own `cabi_realloc` (see the Go SDK's `adapterArena`).
fn with_adapter_realloc(core: &[u8], marker: u32) -> Result<Vec<u8>, String> {
    use wasm_encoder::{CodeSection, ExportKind, ExportSection, FunctionSection, Instruction as I, MemArg, RawSection};
    use wasmparser::{Payload, TypeRef};

    let mut module = wasm_encoder::Module::new();
    let (mut imported_funcs, mut defined, mut realloc_type) = (0u32, Vec::new(), None);
    let mut exports = Vec::new();
    let mut code = CodeSection::new();
    let invalid = |e: wasmparser::BinaryReaderError| format!("not valid wasm: {e}");
    for payload in wasmparser::Parser::new(0).parse_all(core) {
        match payload.map_err(invalid)? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    imported_funcs += u32::from(matches!(import.map_err(invalid)?.ty, TypeRef::Func(_)));
                }
            }
            Payload::FunctionSection(reader) => {
                defined = reader.into_iter().collect::<Result<_, _>>().map_err(invalid)?
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    if export.name == "cabi_realloc" && export.kind == wasmparser::ExternalKind::Func {
                        realloc_type =
                            export.index.checked_sub(imported_funcs).and_then(|i| defined.get(i as usize)).copied();
                    }
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            Payload::CodeSectionEntry(body) => {
                code.raw(bytes(core, body.range()));
            }
            _ => {}
        }
    }
    let Some(realloc_type) = realloc_type else {
        return Err("the module exports no cabi_realloc".into());
    };
    let adapter_realloc = imported_funcs + defined.len() as u32;

    // (old_ptr, old_size, align, new_size) -> ptr; fresh allocations only, as the adapter makes.
    let area = marker + ARENA_MARKER.len() as u32;
    let next = MemArg { offset: u64::from(area), align: 0, memory_index: 0 };
    let (base, end) = (area + 8, area + ARENA_SIZE);
    let mut body = wasm_encoder::Function::new([(1, wasm_encoder::ValType::I32)]);
    for op in [
        I::LocalGet(0),
        I::If(wasm_encoder::BlockType::Empty),
        I::Unreachable,
        I::End,
        // ptr = align_up(next or base, align)
        I::I32Const(0),
        I::I32Load(next),
        I::LocalTee(4),
        I::I32Eqz,
        I::If(wasm_encoder::BlockType::Empty),
        I::I32Const(base as i32),
        I::LocalSet(4),
        I::End,
        I::LocalGet(4),
        I::LocalGet(2),
        I::I32Add,
        I::I32Const(1),
        I::I32Sub,
        I::I32Const(0),
        I::LocalGet(2),
        I::I32Sub,
        I::I32And,
        I::LocalSet(4),
        // next = ptr + new_size, within the arena: ptr <= end and new_size <= end - ptr (no wrap)
        I::LocalGet(4),
        I::I32Const(end as i32),
        I::I32GtU,
        I::If(wasm_encoder::BlockType::Empty),
        I::Unreachable,
        I::End,
        I::LocalGet(3),
        I::I32Const(end as i32),
        I::LocalGet(4),
        I::I32Sub,
        I::I32GtU,
        I::If(wasm_encoder::BlockType::Empty),
        I::Unreachable,
        I::End,
        I::I32Const(0),
        I::LocalGet(4),
        I::LocalGet(3),
        I::I32Add,
        I::I32Store(next),
        I::LocalGet(4),
        I::End,
    ] {
        body.instruction(&op);
    }
    code.function(&body);

    for payload in wasmparser::Parser::new(0).parse_all(core) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::FunctionSection(_) => {
                let mut functions = FunctionSection::new();
                defined.iter().chain([&realloc_type]).for_each(|t| {
                    functions.function(*t);
                });
                module.section(&functions);
            }
            Payload::ExportSection(_) => {
                let mut section = ExportSection::new();
                for (name, kind, index) in &exports {
                    section.export(name, ExportKind::from(*kind), *index);
                }
                section.export("cabi_realloc_adapter", ExportKind::Func, adapter_realloc);
                module.section(&section);
            }
            Payload::CodeSectionStart { .. } => {
                module.section(&code);
            }
            Payload::CodeSectionEntry(_) | Payload::Version { .. } | Payload::End(_) => {}
            other => {
                if let Some((id, range)) = other.as_section() {
                    module.section(&RawSection { id, data: bytes(core, range) });
                }
            }
        }
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_and_other_bytes_are_not_core_modules() {
        assert!(is_core_module(b"\0asm\x01\0\0\0rest"));
        assert!(!is_core_module(b"\0asm\x0d\0\x01\0rest"), "a component");
        assert!(componentize(b"not wasm").unwrap_err().contains("not a core wasm module"));
    }

    #[test]
    fn a_module_without_the_exports_is_refused_with_the_reason() {
        // The smallest core module: no exports at all.
        let err = componentize(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(err.contains("does it implement wit/plugin.wit?"), "{err}");
    }
}
