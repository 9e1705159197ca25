//! What Kong's request- and response-transformer share: their five operations, applied in the
//! order `remove`, `rename`, `replace`, `add`, `append`, and their `name:value` entries.

/// The five operations on things named by `N`, with values `V`.
pub struct Operations<N, V> {
    /// Names to remove.
    pub remove: Vec<N>,
    /// `(old, new)` names.
    pub rename: Vec<(N, N)>,
    /// Values to set where the name is present.
    pub replace: Vec<(N, V)>,
    /// Values to set where the name is absent.
    pub add: Vec<(N, V)>,
    /// Values to add one more of.
    pub append: Vec<(N, V)>,
}

impl<N, V> Default for Operations<N, V> {
    fn default() -> Self {
        Operations { remove: Vec::new(), rename: Vec::new(), replace: Vec::new(), add: Vec::new(), append: Vec::new() }
    }
}

impl<N, V> Operations<N, V> {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }
}

/// Splits a `name:value` entry as Kong does (`^([^:]+):*(.-)$`): the value is what follows the
/// first colons, and may be empty (`None` without a colon).
pub fn split_entry(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once(':') {
        Some((name, value)) => (name, Some(value.trim_start_matches(':'))),
        None => (entry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        assert_eq!(split_entry("x-a:1:2"), ("x-a", Some("1:2")));
        assert_eq!(split_entry("x-a::1"), ("x-a", Some("1")));
        assert_eq!(split_entry("x-a:"), ("x-a", Some("")));
        assert_eq!(split_entry("x-a"), ("x-a", None));
        assert!(Operations::<String, String>::default().is_empty());
    }
}
