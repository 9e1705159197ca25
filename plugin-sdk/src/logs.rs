//! What Kong's log plugins (file-log, http-log, ...) share.

use std::collections::BTreeMap;

/// Kong's `custom_fields_by_lua` option: accepted so that Kong's configurations parse, refused
/// when set, with what to do instead.
pub fn refuse_custom_fields_by_lua(fields: &BTreeMap<String, String>) -> Result<(), String> {
    match fields.is_empty() {
        true => Ok(()),
        false => Err("custom_fields_by_lua: there is no Lua in wasmgate; reshape the record in a plugin of your own with sink::serialize and sink::send".into()),
    }
}
