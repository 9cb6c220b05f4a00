//! A sorted table of function symbols (from `.symtab` or `.dynsym`) answering "which function
//! contains this address", used when an address has no DWARF.

/// One function symbol: its start, its size (0 when unknown) and its raw (mangled) name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SymbolEntry {
    pub address: u64,
    pub size: u64,
    /// Lower is preferred when several symbols share an address (global before weak before local).
    pub rank: u8,
    pub name: Box<str>,
}

/// Function symbols sorted by address, one per address.
#[derive(Debug, Default)]
pub(crate) struct SymbolTable {
    entries: Vec<SymbolEntry>,
}

impl SymbolTable {
    pub fn new(mut entries: Vec<SymbolEntry>) -> Self {
        entries.retain(|e| !e.name.is_empty());
        // For each address keep the best-ranked symbol, preferring one that knows its size.
        entries.sort_by(|a, b| {
            a.address.cmp(&b.address).then(a.rank.cmp(&b.rank)).then((a.size == 0).cmp(&(b.size == 0)))
        });
        entries.dedup_by_key(|e| e.address);
        SymbolTable { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The symbol containing `probe`: the nearest one at or below it, unless its known size
    /// ends before `probe` (then `probe` is in a gap between functions).
    pub fn lookup(&self, probe: u64) -> Option<&SymbolEntry> {
        let after = self.entries.partition_point(|e| e.address <= probe);
        let entry = self.entries.get(after.checked_sub(1)?)?;
        if entry.size != 0 && probe - entry.address >= entry.size {
            return None;
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(address: u64, size: u64, rank: u8, name: &str) -> SymbolEntry {
        SymbolEntry { address, size, rank, name: name.into() }
    }

    #[test]
    fn finds_the_enclosing_function_and_respects_sizes() {
        let table = SymbolTable::new(vec![
            sym(0x2000, 0x10, 0, "second"),
            sym(0x1000, 0x100, 0, "first"),
            sym(0x3000, 0, 0, "label"),
        ]);
        assert_eq!(table.len(), 3);
        assert_eq!(table.lookup(0x1000).map(|e| &*e.name), Some("first"));
        assert_eq!(table.lookup(0x10ff).map(|e| &*e.name), Some("first"));
        assert_eq!(table.lookup(0x1100), None, "gap after a sized function");
        assert_eq!(table.lookup(0x200f).map(|e| &*e.name), Some("second"));
        assert_eq!(table.lookup(0x0fff), None, "before the first symbol");
        assert_eq!(table.lookup(0x9999).map(|e| &*e.name), Some("label"));
    }

    #[test]
    fn prefers_global_sized_symbols_at_a_shared_address() {
        let table = SymbolTable::new(vec![
            sym(0x1000, 0, 0, "unsized_global"),
            sym(0x1000, 0x20, 2, "local"),
            sym(0x1000, 0x20, 0, "global"),
            sym(0x1000, 0x20, 1, "weak"),
            sym(0x4000, 0x20, 0, ""),
        ]);
        assert_eq!(table.len(), 1);
        assert_eq!(table.lookup(0x1010).map(|e| &*e.name), Some("global"));
        assert_eq!(table.lookup(0x4000), None, "nameless symbols are dropped");
    }

    #[test]
    fn empty_table_finds_nothing() {
        let table = SymbolTable::default();
        assert!(table.is_empty());
        assert_eq!(table.lookup(0), None);
        assert_eq!(table.lookup(u64::MAX), None);
    }
}
