//! A radix trie of plain path prefixes: walking a request path visits every configured prefix of it
//! in one pass, so lookup cost follows the path's length, not the number of routes.

/// Prefix trie mapping byte strings to values.
#[derive(Debug)]
pub(crate) struct PrefixTrie<T> {
    nodes: Vec<Node<T>>,
}

#[derive(Debug)]
struct Node<T> {
    edges: Vec<Edge>,
    values: Vec<T>,
}

#[derive(Debug)]
struct Edge {
    label: Box<[u8]>,
    to: usize,
}

impl<T> Default for PrefixTrie<T> {
    fn default() -> Self {
        PrefixTrie { nodes: vec![Node { edges: Vec::new(), values: Vec::new() }] }
    }
}

impl<T> PrefixTrie<T> {
    /// Adds `value` under `key`.
    pub(crate) fn insert(&mut self, key: &[u8], value: T) {
        let mut node = 0;
        let mut rest = key;
        while !rest.is_empty() {
            let found = self.nodes[node].edges.iter().position(|e| e.label[0] == rest[0]);
            let Some(ei) = found else {
                let to = self.push_node();
                self.nodes[node].edges.push(Edge { label: rest.into(), to });
                node = to;
                break;
            };
            let label_len = self.nodes[node].edges[ei].label.len();
            let common = common_prefix(&self.nodes[node].edges[ei].label, rest);
            if common < label_len {
                // Split the edge: node -[common]-> mid -[rest of label]-> old child.
                let mid = self.push_node();
                let edge = &mut self.nodes[node].edges[ei];
                let tail: Box<[u8]> = edge.label[common..].into();
                let old_to = edge.to;
                edge.label = edge.label[..common].into();
                edge.to = mid;
                self.nodes[mid].edges.push(Edge { label: tail, to: old_to });
            }
            node = self.nodes[node].edges[ei].to;
            rest = &rest[common..];
        }
        self.nodes[node].values.push(value);
    }

    fn push_node(&mut self) -> usize {
        self.nodes.push(Node { edges: Vec::new(), values: Vec::new() });
        self.nodes.len() - 1
    }

    /// Calls `f(prefix_len, value)` for every stored key that is a prefix of `key`.
    pub(crate) fn for_each_prefix<'a>(&'a self, key: &[u8], mut f: impl FnMut(usize, &'a T)) {
        let mut node = 0;
        let mut depth = 0;
        loop {
            for v in &self.nodes[node].values {
                f(depth, v);
            }
            let rest = &key[depth..];
            let Some(edge) = rest.first().and_then(|b| self.nodes[node].edges.iter().find(|e| e.label[0] == *b)) else {
                return;
            };
            if !rest.starts_with(&edge.label) {
                return;
            }
            depth += edge.label.len();
            node = edge.to;
        }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(t: &PrefixTrie<&'static str>, key: &str) -> Vec<(usize, &'static str)> {
        let mut out = Vec::new();
        t.for_each_prefix(key.as_bytes(), |len, v| out.push((len, *v)));
        out
    }

    #[test]
    fn finds_every_prefix() {
        let mut t = PrefixTrie::default();
        for k in ["/", "/my-route", "/my", "/other", "/my-route/x", "/my-rout"] {
            t.insert(k.as_bytes(), k);
        }
        t.insert(b"/my", "/my again");
        assert_eq!(
            prefixes(&t, "/my-route-uri"),
            vec![(1, "/"), (3, "/my"), (3, "/my again"), (8, "/my-rout"), (9, "/my-route")]
        );
        assert_eq!(prefixes(&t, "/oth"), vec![(1, "/")]);
        assert_eq!(
            prefixes(&t, "/my-route/x/y"),
            vec![(1, "/"), (3, "/my"), (3, "/my again"), (8, "/my-rout"), (9, "/my-route"), (11, "/my-route/x")]
        );
        assert!(prefixes(&t, "").is_empty());
    }
}
