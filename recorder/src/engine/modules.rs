//! The module map: which executable and shared objects are loaded where.
//!
//! A scan walks `dl_iterate_phdr` (without holding any engine lock: the loader may hold its own
//! locks while it calls malloc) and copies what each object's program headers say. Merging the
//! scan into the registry happens under a short spin lock and emits `ModuleLoad` / `ModuleUnload`
//! events for what changed. Each merge publishes an immutable [`Snapshot`] — address ranges plus
//! the in-process unwinder over the objects' `.eh_frame_hdr` / `.eh_frame` — through an atomic
//! pointer; old snapshots are leaked on purpose, since a thread may still be unwinding with one.
//!
//! Unwind tables of objects present at the first scan of the process image (the executable and
//! its startup dependencies, which are never unloaded) are read in place. Tables of objects that
//! appear later (dlopen) are copied, so a snapshot never points into a dlclose'd object.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use leakview_format::{Event, Segment, Segments};

use crate::engine::elf::{self, ProgramHeader};
use crate::engine::sys::{self, SpinLock};

/// `.eh_frame_hdr` and `.eh_frame` of one object, as stated addresses (relative to the bias)
/// and bytes that stay valid for the rest of the process.
#[derive(Clone, Copy)]
pub struct UnwindSections {
    pub eh_frame_hdr: &'static [u8],
    pub eh_frame_hdr_svma: u64,
    pub eh_frame: &'static [u8],
    pub eh_frame_svma: u64,
    pub text_svma: Option<(u64, u64)>,
}

/// A loaded object as the registry knows it.
pub struct ModuleInfo {
    /// Its id in this session's trace.
    pub id: u32,
    /// Unique in the process across registries (the session's and the in-process API's, a fork
    /// child's after its parent's): what [`Snapshot::extends`] compares.
    load: u32,
    key: u64,
    pub base: u64,
    pub path: Vec<u8>,
    pub build_id: Vec<u8>,
    pub segments: Vec<Segment>,
    /// Absolute `[start, end)` of the loadable segments.
    pub range: (u64, u64),
    pub unwind: Option<UnwindSections>,
}

impl ModuleInfo {
    fn load_event(&self, ts: u64) -> Event<'_> {
        Event::ModuleLoad {
            ts,
            id: self.id,
            base: self.base,
            path: &self.path,
            build_id: &self.build_id,
            segments: Segments::Slice(&self.segments),
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub type Unwinder = framehop::x86_64::UnwinderX86_64<&'static [u8], framehop::MustNotAllocateDuringUnwind>;

/// An immutable view of the module map, published for lock-free use on the hot path.
pub struct Snapshot {
    /// Sorted, non-overlapping absolute ranges of known modules.
    ranges: Vec<(u64, u64)>,
    /// Load keys (base and path) of its modules: a scan skips the objects it already knows.
    keys: Vec<u64>,
    /// Load serials of its modules (`ModuleInfo::load`), ascending. A serial names one load of
    /// one object in one registry: an object unloaded and loaded again (even at the same
    /// address), or found by another registry, gets a new one.
    loads: Vec<u32>,
    /// The loader's (adds, subs) counters when the scan ran.
    pub loader_generation: (u64, u64),
    #[cfg(target_arch = "x86_64")]
    pub unwinder: Unwinder,
}

impl Snapshot {
    /// Whether `address` lies in a known module.
    pub fn contains(&self, address: u64) -> bool {
        let i = self.ranges.partition_point(|&(start, _)| start <= address);
        i > 0 && address < self.ranges[i - 1].1
    }

    /// The known module range holding `address`.
    pub fn range_of(&self, address: u64) -> Option<(u64, u64)> {
        let i = self.ranges.partition_point(|&(start, _)| start <= address);
        (i > 0 && address < self.ranges[i - 1].1).then(|| self.ranges[i - 1])
    }

    /// Whether every module of `older` is still in this snapshot, the same load of it (objects
    /// were loaded since, none unloaded): a module kept across scans keeps its range and unwind
    /// tables.
    pub fn extends(&self, older: &Snapshot) -> bool {
        older.loads.iter().all(|load| self.loads.binary_search(load).is_ok())
    }

    fn knows(&self, key: u64) -> bool {
        self.keys.contains(&key)
    }
}

struct Inner {
    modules: Vec<ModuleInfo>,
    next_id: u32,
}

/// The next module load serial of the process (see `ModuleInfo::load`).
static NEXT_LOAD: AtomicU32 = AtomicU32::new(1);

/// The module map of one session.
pub struct ModuleRegistry {
    lock: SpinLock,
    inner: UnsafeCell<Inner>,
    snapshot: AtomicPtr<Snapshot>,
}

// SAFETY: `inner` is only touched with `lock` held; snapshots are immutable once published.
unsafe impl Sync for ModuleRegistry {}
// SAFETY: as above.
unsafe impl Send for ModuleRegistry {}

/// Set once the first scan of this process image has run (kept across fork: same image).
static FIRST_SCAN_DONE: AtomicBool = AtomicBool::new(false);

/// The dynamic loader's (adds, subs) counters: they change whenever an object is loaded or
/// unloaded. Takes the loader's lock briefly; never allocates.
pub fn loader_generation() -> (u64, u64) {
    unsafe extern "C" fn first(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
        // SAFETY: the loader passes a valid info; `data` is the tuple below.
        unsafe {
            let out = &mut *data.cast::<(u64, u64)>();
            *out = ((*info).dlpi_adds, (*info).dlpi_subs);
        }
        1
    }
    let mut out = (0u64, 0u64);
    // SAFETY: the callback only writes through the pointer to `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut out).cast()) };
    out
}

fn key_of(base: u64, path: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ base;
    for &b in path {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ base
}

/// Path of the running executable (`/proc/self/exe`).
pub fn executable_path() -> Vec<u8> {
    std::fs::read_link("/proc/self/exe")
        .map(|p| std::os::unix::ffi::OsStringExt::into_vec(p.into_os_string()))
        .unwrap_or_default()
}

struct Scanned {
    key: u64,
    base: u64,
    path: Vec<u8>,
    build_id: Vec<u8>,
    segments: Vec<Segment>,
    range: (u64, u64),
    unwind: Option<UnwindSections>,
    known: bool,
}

struct ScanContext<'a> {
    known: Option<&'a Snapshot>,
    in_place: bool,
    out: Vec<Scanned>,
    generation: (u64, u64),
}

/// Copies or borrows `len` bytes at `addr` for the rest of the process.
///
/// # Safety
/// `addr..addr+len` must be mapped and readable now, and, if `in_place`, for the rest of the
/// process.
unsafe fn keep_bytes(addr: u64, len: usize, in_place: bool) -> &'static [u8] {
    // SAFETY: the caller guarantees the range is mapped and readable.
    let bytes: &'static [u8] = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
    if in_place { bytes } else { Box::leak(bytes.to_vec().into_boxed_slice()) }
}

/// Reads one object's program headers.
///
/// # Safety
/// `info` must be a valid `dl_phdr_info` from the loader, used inside the callback.
unsafe fn scan_one(info: &libc::dl_phdr_info, ctx: &mut ScanContext<'_>) {
    // SAFETY: dlpi_name is a NUL-terminated string owned by the loader (or null).
    let name = unsafe { sys::c_bytes(info.dlpi_name) };
    if name.starts_with(b"linux-vdso") || name.starts_with(b"linux-gate") {
        return;
    }
    let base = info.dlpi_addr;
    let key = key_of(base, name);
    if ctx.known.is_some_and(|s| s.knows(key)) {
        ctx.out.push(Scanned {
            key,
            base,
            path: Vec::new(),
            build_id: Vec::new(),
            segments: Vec::new(),
            range: (0, 0),
            unwind: None,
            known: true,
        });
        return;
    }
    let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader describes `dlpi_phnum` program headers at `dlpi_phdr`.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
    };
    let headers: Vec<ProgramHeader> = phdrs
        .iter()
        .map(|p| ProgramHeader { kind: p.p_type, flags: p.p_flags, vaddr: p.p_vaddr, memsz: p.p_memsz })
        .collect();
    let Some((lo, hi)) = elf::load_range(&headers) else { return };
    let mut build_id = Vec::new();
    for p in phdrs.iter().filter(|p| p.p_type == elf::PT_NOTE) {
        // SAFETY: PT_NOTE segments lie inside a loaded, readable segment of this object.
        let notes =
            unsafe { std::slice::from_raw_parts((base + p.p_vaddr) as *const u8, p.p_memsz as usize) };
        if let Some(id) = elf::build_id_in_notes(notes) {
            build_id = id.to_vec();
            break;
        }
    }
    let unwind = phdrs.iter().find(|p| p.p_type == elf::PT_GNU_EH_FRAME).and_then(|hdr| {
        let hdr_addr = base + hdr.p_vaddr;
        // SAFETY: PT_GNU_EH_FRAME describes the mapped `.eh_frame_hdr`.
        let hdr_bytes = unsafe { std::slice::from_raw_parts(hdr_addr as *const u8, hdr.p_memsz as usize) };
        let eh_addr = elf::eh_frame_address(hdr_bytes, hdr_addr)?;
        let eh_svma = eh_addr.checked_sub(base)?;
        // `.eh_frame` has no program header of its own: it runs to the end of its segment.
        let segment = phdrs.iter().find(|p| {
            p.p_type == elf::PT_LOAD
                && p.p_vaddr <= eh_svma
                && eh_svma < p.p_vaddr + p.p_filesz.min(p.p_memsz)
        })?;
        let eh_len = (segment.p_vaddr + segment.p_filesz.min(segment.p_memsz) - eh_svma) as usize;
        let text = phdrs
            .iter()
            .find(|p| p.p_type == elf::PT_LOAD && p.p_flags & libc::PF_X != 0)
            .map(|p| (p.p_vaddr, p.p_vaddr + p.p_memsz));
        // SAFETY: both ranges lie in loaded segments of this object, readable while it is
        // loaded; in-place use is limited to objects that are never unloaded.
        let (eh_frame_hdr, eh_frame) = unsafe {
            (
                keep_bytes(hdr_addr, hdr.p_memsz as usize, ctx.in_place),
                keep_bytes(eh_addr, eh_len, ctx.in_place),
            )
        };
        Some(UnwindSections {
            eh_frame_hdr,
            eh_frame_hdr_svma: hdr.p_vaddr,
            eh_frame,
            eh_frame_svma: eh_svma,
            text_svma: text,
        })
    });
    let path = if name.is_empty() { executable_path() } else { name.to_vec() };
    ctx.out.push(Scanned {
        key,
        base,
        path,
        build_id,
        segments: elf::segments(&headers).collect(),
        range: (base.wrapping_add(lo), base.wrapping_add(hi)),
        unwind,
        known: false,
    });
}

unsafe extern "C" fn scan_callback(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
    // SAFETY: `data` is the ScanContext passed to dl_iterate_phdr; `info` is valid for the call.
    unsafe {
        let ctx = &mut *data.cast::<ScanContext<'_>>();
        ctx.generation = ((*info).dlpi_adds, (*info).dlpi_subs);
        scan_one(&*info, ctx);
    }
    0
}

impl ModuleRegistry {
    pub fn new() -> Self {
        ModuleRegistry {
            lock: SpinLock::new(),
            inner: UnsafeCell::new(Inner { modules: Vec::new(), next_id: 1 }),
            snapshot: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The current snapshot (none before the first scan).
    pub fn snapshot(&self) -> Option<&'static Snapshot> {
        let ptr = self.snapshot.load(Ordering::Acquire);
        // SAFETY: published snapshots are leaked, hence valid for the rest of the process.
        (!ptr.is_null()).then(|| unsafe { &*ptr })
    }

    /// Takes the registry lock (fork preparation) until [`ModuleRegistry::unlock_after_fork`].
    pub fn lock_for_fork(&self) {
        self.lock.raw_lock();
    }

    pub fn unlock_after_fork(&self) {
        self.lock.raw_unlock();
    }

    /// Scans the loaded objects and merges them in: new objects get an id and a `ModuleLoad`
    /// event (timestamped `ts`), vanished ones a `ModuleUnload`. Events go to `emit`.
    /// Returns whether anything changed. Allocates through the engine's allocator: call it with
    /// the thread's reentrancy guard held.
    pub fn rescan(&self, ts: u64, emit: &mut dyn FnMut(&Event<'_>)) -> bool {
        let current = self.snapshot();
        let in_place = !FIRST_SCAN_DONE.load(Ordering::Acquire);
        let mut ctx = ScanContext { known: current, in_place, out: Vec::new(), generation: (0, 0) };
        // SAFETY: the callback only uses the context, which outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(scan_callback), (&raw mut ctx).cast()) };
        FIRST_SCAN_DONE.store(true, Ordering::Release);

        let _guard = self.lock.lock();
        // SAFETY: the lock is held.
        let inner = unsafe { &mut *self.inner.get() };
        let mut changed = false;
        let present: Vec<u64> = ctx.out.iter().map(|s| s.key).collect();
        inner.modules.retain(|m| {
            let keep = present.contains(&m.key);
            if !keep {
                emit(&Event::ModuleUnload { ts, id: m.id });
                changed = true;
            }
            keep
        });
        for scanned in ctx.out.into_iter().filter(|s| !s.known) {
            if inner.modules.iter().any(|m| m.key == scanned.key) {
                continue;
            }
            let module = ModuleInfo {
                id: inner.next_id,
                load: NEXT_LOAD.fetch_add(1, Ordering::Relaxed),
                key: scanned.key,
                base: scanned.base,
                path: scanned.path,
                build_id: scanned.build_id,
                segments: scanned.segments,
                range: scanned.range,
                unwind: scanned.unwind,
            };
            inner.next_id += 1;
            emit(&module.load_event(ts));
            inner.modules.push(module);
            changed = true;
        }
        if changed || current.is_none() {
            let snapshot = Box::new(build_snapshot(&inner.modules, ctx.generation));
            self.snapshot.store(Box::into_raw(snapshot), Ordering::Release);
        } else if let Some(snapshot) = current
            && snapshot.loader_generation != ctx.generation
        {
            // Nothing we track changed, but remember the loader state so unknown addresses do
            // not trigger rescans until it changes again.
            let mut fresh = build_snapshot(&inner.modules, ctx.generation);
            fresh.loader_generation = ctx.generation;
            self.snapshot.store(Box::into_raw(Box::new(fresh)), Ordering::Release);
        }
        changed
    }

    /// Emits a `ModuleLoad` for every known module (used right after a session starts).
    pub fn emit_all(&self, ts: u64, emit: &mut dyn FnMut(&Event<'_>)) {
        let _guard = self.lock.lock();
        // SAFETY: the lock is held.
        let inner = unsafe { &*self.inner.get() };
        for module in &inner.modules {
            emit(&module.load_event(ts));
        }
    }

    /// Number of modules currently known.
    pub fn len(&self) -> usize {
        let _guard = self.lock.lock();
        // SAFETY: the lock is held.
        unsafe { (*self.inner.get()).modules.len() }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ModuleRegistry {
    fn default() -> Self {
        Self::new()
    }
}

fn build_snapshot(modules: &[ModuleInfo], generation: (u64, u64)) -> Snapshot {
    let mut ranges: Vec<(u64, u64)> = modules.iter().map(|m| m.range).collect();
    ranges.sort_unstable();
    #[cfg(target_arch = "x86_64")]
    let unwinder = {
        use framehop::Unwinder as _;
        let mut unwinder = Unwinder::new();
        for module in modules {
            let Some(u) = module.unwind else { continue };
            let info = framehop::ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: u.text_svma.map(|(a, b)| a..b),
                eh_frame_svma: Some(u.eh_frame_svma..u.eh_frame_svma + u.eh_frame.len() as u64),
                eh_frame: Some(u.eh_frame),
                eh_frame_hdr_svma: Some(
                    u.eh_frame_hdr_svma..u.eh_frame_hdr_svma + u.eh_frame_hdr.len() as u64,
                ),
                eh_frame_hdr: Some(u.eh_frame_hdr),
                ..Default::default()
            };
            unwinder.add_module(framehop::Module::new(
                String::new(),
                module.range.0..module.range.1,
                module.base,
                info,
            ));
        }
        unwinder
    };
    Snapshot {
        ranges,
        keys: modules.iter().map(|m| m.key).collect(),
        loads: {
            let mut loads: Vec<u32> = modules.iter().map(|m| m.load).collect();
            loads.sort_unstable();
            loads
        },
        loader_generation: generation,
        #[cfg(target_arch = "x86_64")]
        unwinder,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A snapshot of no modules, leaked as the registry's are.
    pub(crate) fn empty_snapshot() -> &'static Snapshot {
        Box::leak(Box::new(build_snapshot(&[], (0, 0))))
    }

    #[test]
    fn another_registrys_snapshot_of_the_same_modules_does_not_extend() {
        // Module ids restart in every registry (a new session's, a fork child's): the same ids
        // there may name other loads, so rules learned with one must not carry over.
        let (first, second) = (ModuleRegistry::new(), ModuleRegistry::new());
        first.rescan(0, &mut |_| {});
        second.rescan(0, &mut |_| {});
        let (a, b) = (first.snapshot().expect("snapshot"), second.snapshot().expect("snapshot"));
        assert!(!a.loads.is_empty() && a.loads.len() == b.loads.len());
        assert!(!b.extends(a));
        assert!(!a.extends(b));
    }

    #[test]
    fn a_snapshot_extends_those_whose_modules_it_still_has() {
        let registry = ModuleRegistry::new();
        registry.rescan(0, &mut |_| {});
        let full = registry.snapshot().expect("snapshot");
        let empty = empty_snapshot();
        assert!(!full.loads.is_empty());
        assert!(full.extends(full));
        assert!(full.extends(empty));
        assert!(!empty.extends(full));
    }

    fn module(id: u32, base: u64, path: &[u8]) -> ModuleInfo {
        ModuleInfo {
            id,
            load: id,
            key: key_of(base, path),
            base,
            path: path.to_vec(),
            build_id: Vec::new(),
            segments: Vec::new(),
            range: (base, base + 0x1000),
            unwind: None,
        }
    }

    #[test]
    fn an_object_loaded_again_at_the_same_place_is_a_new_module() {
        let before = build_snapshot(&[module(1, 0x1000, b"/app"), module(2, 0x10000, b"/lib.so")], (1, 0));
        let more = build_snapshot(
            &[module(1, 0x1000, b"/app"), module(2, 0x10000, b"/lib.so"), module(3, 0x20000, b"/b.so")],
            (2, 0),
        );
        // lib.so unloaded, then loaded again at the same address: same path and base, new id.
        let reloaded = build_snapshot(&[module(1, 0x1000, b"/app"), module(4, 0x10000, b"/lib.so")], (3, 1));
        assert!(more.extends(&before));
        assert!(!reloaded.extends(&before), "learned rules of the unloaded object must not stay");
        assert!(!before.extends(&more));
    }

    #[test]
    fn scan_finds_this_executable_with_its_code() {
        let registry = ModuleRegistry::new();
        let mut loads = Vec::new();
        assert!(registry.rescan(7, &mut |e| loads.push(e.to_owned_event())));
        assert!(!loads.is_empty());
        let snapshot = registry.snapshot().expect("snapshot");
        let here = scan_finds_this_executable_with_its_code as *const () as usize as u64;
        assert!(snapshot.contains(here));
        assert!(!snapshot.contains(8));
        let exe = executable_path();
        let found = loads.iter().any(|e| {
            matches!(e, leakview_format::OwnedEvent::ModuleLoad { path, ts: 7, segments, .. }
                if *path == exe && !segments.is_empty())
        });
        assert!(found, "no ModuleLoad for {:?}", String::from_utf8_lossy(&exe));
        // A second scan with nothing loaded or unloaded emits nothing.
        let mut again = Vec::new();
        assert!(!registry.rescan(8, &mut |e| again.push(e.to_owned_event())));
        assert!(again.is_empty());
        assert_eq!(registry.len(), loads.len());
    }

    #[test]
    fn loader_generation_counts_loads() {
        let (adds, _subs) = loader_generation();
        assert!(adds > 0);
    }
}
