//! Absolute paths of the audited system, as bytes: depth, ancestry.

/// Number of components: `/` is 0, `/var` is 1.
pub fn depth_of(path: &[u8]) -> u32 {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty()).count() as u32
}

/// `a` is `b` or an ancestor of `b` (both normalised absolute paths).
pub fn is_ancestor_or_self(a: &[u8], b: &[u8]) -> bool {
    if a == b"/" {
        return true;
    }
    b.starts_with(a) && (b.len() == a.len() || b[a.len()] == b'/')
}

/// `/`, `/a`, `/a/b`, … `path`, each with its depth.
pub fn ancestors_or_self(path: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let ends = path
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i)
        .chain((path.len() > 1).then_some(path.len()));
    std::iter::once((0u32, &b"/"[..]))
        .chain(ends.enumerate().map(move |(d, end)| (d as u32 + 1, &path[..end])))
}
