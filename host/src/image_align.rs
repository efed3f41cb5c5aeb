//! Lining the snapshot's memory image up with 2 MiB pages, so that the
//! kernel maps the index in each pool slot with huge pages.
//!
//! A request's instance reads the index straight from the compiled snapshot
//! file: wasmtime maps the file's memory image, private and copy-on-write,
//! at the image's offset in the slot's linear memory. The page cache holds
//! that file in 2 MiB folios, and Linux maps such a folio with one PMD entry
//! instead of 512 PTEs, but only where the virtual address and the file
//! offset agree modulo 2 MiB. Wasmtime chooses where the image lies in the
//! file (after the code) and where it starts in linear memory (the page of
//! its first non-zero byte), so nothing makes them agree: the 200k-shot
//! snapshot was 52 KiB off, and every row a graph walk read cost a TLB miss
//! and a page-table walk over 4 KiB pages.
//!
//! The fix moves the image's start. Pre-initialization keeps the initialized
//! instance and first compiles a probe snapshot of it ([`Rewrite::Probe`]:
//! the same code, each memory cut to the first page of its image, so that
//! the image lands where the real one will without the index being compiled
//! twice), instantiates it, and reads in `/proc/self/maps` how far off the
//! mapping is ([`misalignment`]). The real snapshot then carries one
//! non-zero byte that much lower in the guest's stack ([`Rewrite::Marker`],
//! [`marker_address`]), so that its image starts where virtual address and
//! file offset agree. The byte is in stack no code has reached yet (the
//! stack grows down from above it), so the guest cannot tell. The query
//! component's stack is 3 MiB (`query-component/.cargo/config.toml`), so
//! that the data, which starts above it, is always more than 2 MiB up and
//! some lower start always exists.
//!
//! Alignment is half of it: the page cache must hold the file in 2 MiB
//! folios too. A file just written does; one read back after its pages were
//! reclaimed comes in by ordinary readahead, in small folios, and an aligned
//! mapping of those is still 4 KiB pages (36 of 374 MB on 2 MiB pages at
//! 200k shots after the test suite had run, smaps read by hand; like_shot 1.28–1.43× native
//! again). [`huge_page_cache`] checks a cached snapshot before it is loaded
//! and, when it is in small folios, drops it from the page cache and reads
//! it back through a mapping advised `MADV_HUGEPAGE`, whose faults read
//! whole 2 MiB folios (1.8 s for the 749 MB 200k-shot file here, timed by
//! hand with the same steps in a script not kept; busca-serve logs the
//! time it takes).
//!
//! busca-host-bench at 200k shots, like_shot inside the component against
//! native core search (whose heap is on 4 KiB pages): 1.86–2.26× in four
//! runs before, 0.97–1.10× in three after (12-02), with `FilePmdMapped` in
//! each slot's mapping 0 before and about 370 MB after.

use std::path::Path;

use wasmtime_wizer::ComponentInstanceState;

/// The huge page size the image is aligned to (a PMD on x86-64, and on
/// aarch64 with 4 KiB pages).
pub const HUGE_PAGE: u64 = 2 << 20;

/// The host page size wasmtime aligns images to.
const HOST_PAGE: u64 = 4 << 10;

/// What one snapshot saw of the guest's largest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryShape {
    /// The wizer accessor export that read it (names the memory).
    pub accessor: String,
    /// Its size in bytes.
    pub len: u64,
    /// The host page holding its first non-zero byte: where the image starts
    /// in linear memory (`None`: all zero, no image).
    pub image_start: Option<u64>,
}

/// Where the marker byte goes for an image `misalignment` bytes past the
/// huge-page phase it needs: `misalignment` lower than it starts now, or
/// `None` when that is below address 0 (the stack under the data is smaller
/// than a huge page).
pub fn marker_address(shape: &MemoryShape, misalignment: u64) -> Option<u64> {
    let start = shape.image_start?;
    (misalignment % HOST_PAGE == 0).then_some(())?;
    // Not at address 0: Rust code must never see a non-null write there.
    start.checked_sub(misalignment).filter(|&a| a >= HOST_PAGE)
}

/// What [`Rewriting`] hands wizer instead of a memory's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// The contents as they are.
    Keep,
    /// Every memory zeroed past the first page of its image: a snapshot
    /// with the same code and the same layout up to the images, to learn
    /// where the image lands in a compiled file without compiling the
    /// whole index into it.
    Probe,
    /// The memory read by `accessor` gets a non-zero byte at `at` (when it
    /// is zero there).
    Marker {
        /// The wizer accessor export naming the memory.
        accessor: String,
        /// The byte's address.
        at: u64,
    },
}

/// Wraps wizer's view of the initialized instance: records each memory's
/// shape and hands wizer the memories as [`Rewrite`] says.
pub struct Rewriting<S> {
    inner: S,
    rewrite: Rewrite,
    seen: Vec<MemoryShape>,
}

impl<S: ComponentInstanceState> Rewriting<S> {
    /// Reads through `inner`, rewriting as `rewrite` says.
    pub fn new(inner: S, rewrite: Rewrite) -> Self {
        Rewriting { inner, rewrite, seen: Vec::new() }
    }

    /// The largest memory wizer read, as it was in the instance.
    pub fn largest_memory(&self) -> Option<&MemoryShape> {
        self.seen.iter().max_by_key(|m| m.len)
    }
}

impl<S: ComponentInstanceState> ComponentInstanceState for Rewriting<S> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let (rewrite, seen) = (&self.rewrite, &mut self.seen);
        self.inner
            .call_func_ret_list_u8(instance, func, move |bytes| {
                let start = bytes.iter().position(|&b| b != 0).map(|i| i / HOST_PAGE as usize * HOST_PAGE as usize);
                seen.push(MemoryShape {
                    accessor: func.to_string(),
                    len: bytes.len() as u64,
                    image_start: start.map(|s| s as u64),
                });
                match (rewrite, start) {
                    (Rewrite::Probe, Some(start)) => {
                        // Zero pages from the allocator: only the kept page is written.
                        let mut probe = vec![0u8; bytes.len()];
                        let end = (start + HOST_PAGE as usize).min(bytes.len());
                        probe[start..end].copy_from_slice(&bytes[start..end]);
                        contents(&probe)
                    }
                    (Rewrite::Marker { accessor, at }, _)
                        if accessor == func && bytes.get(*at as usize) == Some(&0) =>
                    {
                        let mut marked = bytes.to_vec();
                        marked[*at as usize] = 1;
                        contents(&marked)
                    }
                    _ => contents(bytes),
                }
            })
            .await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.inner.call_func_ret_s32(instance, func).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.inner.call_func_ret_s64(instance, func).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.inner.call_func_ret_f32(instance, func).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.inner.call_func_ret_f64(instance, func).await
    }
}

/// One mapping of this process, from `/proc/self/smaps` (or `maps`, which
/// has the same header lines and no fields: `pmd_bytes` stays 0).
struct Mapping<'a> {
    start: u64,
    end: u64,
    /// `rw?p`: writable and private, as a pool slot's copy-on-write image.
    private_writable: bool,
    offset: u64,
    path: &'a str,
    /// `FilePmdMapped`: bytes of it mapped with 2 MiB pages.
    pmd_bytes: u64,
}

/// The mappings listed in `text`.
fn mappings(text: &str) -> Vec<Mapping<'_>> {
    let mut out: Vec<Mapping<'_>> = Vec::new();
    for line in text.lines() {
        if let Some(kib) = line.strip_prefix("FilePmdMapped:") {
            if let Some(last) = out.last_mut() {
                last.pmd_bytes = kib.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) << 10;
            }
            continue;
        }
        // start-end perms offset dev inode path (the path may hold spaces);
        // a field line ("Rss:  12 kB") has no hexadecimal range first.
        let mut fields = line.splitn(6, ' ');
        let Some((start, end)) = fields.next().and_then(|range| range.split_once('-')) else { continue };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16)) else { continue };
        let perms = fields.next().unwrap_or("");
        let Some(offset) = fields.next().and_then(|o| u64::from_str_radix(o, 16).ok()) else { continue };
        out.push(Mapping {
            start,
            end,
            private_writable: perms.starts_with("rw") && perms.as_bytes().get(3) == Some(&b'p'),
            offset,
            path: fields.nth(2).unwrap_or("").trim_start(),
            pmd_bytes: 0,
        });
    }
    out
}

/// The writable private mappings of `file` (the pool slots' images) in
/// `text`, a `/proc/self/maps` or `smaps`.
fn images_of<'a>(text: &'a str, file: &'a str) -> impl Iterator<Item = Mapping<'a>> + 'a {
    mappings(text).into_iter().filter(move |m| m.private_writable && m.path == file)
}

/// How far the largest writable private mapping of `file` in this process
/// (an instance's memory image) is from huge-page alignment: its virtual
/// address minus its file offset, modulo [`HUGE_PAGE`]. `None` when `file`
/// is not mapped that way (or this is not Linux).
pub fn misalignment(file: &Path) -> Option<u64> {
    let file = std::fs::canonicalize(file).ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    misalignment_in(&maps, &file.to_string_lossy())
}

/// [`misalignment`] over the text of a `/proc/<pid>/maps`.
fn misalignment_in(maps: &str, file: &str) -> Option<u64> {
    images_of(maps, file)
        .max_by_key(|m| m.end - m.start)
        .map(|m| m.start.wrapping_sub(m.offset) % HUGE_PAGE)
}

/// How much of `file`'s mappings in this process the kernel maps with
/// 2 MiB pages (`FilePmdMapped` of its writable private mappings, the pool
/// slots' images), in bytes.
pub fn huge_mapped_bytes(file: &Path) -> u64 {
    let Ok(file) = std::fs::canonicalize(file) else { return 0 };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return 0 };
    images_of(&smaps, &file.to_string_lossy()).map(|m| m.pmd_bytes).sum()
}

/// What [`huge_page_cache`] found and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCacheFolios {
    /// The file's size.
    pub bytes: u64,
    /// Bytes of it in 2 MiB folios before.
    pub huge_before: u64,
    /// Bytes of it in 2 MiB folios after (the same when nothing was done).
    pub huge_after: u64,
}

/// Brings `file` into the page cache in 2 MiB folios: maps it read-only,
/// advised `MADV_HUGEPAGE`, touches each 2 MiB, and counts what the kernel
/// mapped whole; if less than nine tenths of it, drops the file's clean,
/// unmapped pages from the page cache (`POSIX_FADV_DONTNEED`) and does the
/// same again, so that the faults read it back in 2 MiB folios. Call it
/// before the file is mapped for serving. Linux only; elsewhere, and where
/// the kernel or file system keeps no large folios, it changes nothing.
pub fn huge_page_cache(file: &Path) -> std::io::Result<PageCacheFolios> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(file)?;
    let bytes = handle.metadata()?.len();
    let huge_before = touch_huge(&handle, bytes)?;
    let mut folios = PageCacheFolios { bytes, huge_before, huge_after: huge_before };
    if huge_before * 10 >= bytes / HUGE_PAGE * HUGE_PAGE * 9 {
        return Ok(folios);
    }
    // SAFETY: advice on a file descriptor this function owns.
    let rc = unsafe { libc::posix_fadvise(handle.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    folios.huge_after = touch_huge(&handle, bytes)?;
    Ok(folios)
}

/// Maps `handle` read-only with `MADV_HUGEPAGE`, reads a byte of each
/// 2 MiB, and returns the bytes of the mapping the kernel mapped with
/// 2 MiB pages.
fn touch_huge(handle: &std::fs::File, bytes: u64) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    if bytes == 0 {
        return Ok(0);
    }
    let len = bytes as usize;
    // SAFETY: a fresh read-only shared mapping of a file this function
    // holds open, read only through volatile byte loads inside its length,
    // and unmapped before returning.
    unsafe {
        let addr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, handle.as_raw_fd(), 0);
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        libc::madvise(addr, len, libc::MADV_HUGEPAGE);
        let base = addr as *const u8;
        for offset in (0..len).step_by(HUGE_PAGE as usize) {
            std::ptr::read_volatile(base.add(offset));
        }
        let huge = mapping_pmd_bytes(addr as usize);
        libc::munmap(addr, len);
        Ok(huge)
    }
}

/// `FilePmdMapped` of the mapping starting at `start` in this process.
fn mapping_pmd_bytes(start: usize) -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return 0 };
    mappings(&smaps).iter().find(|m| m.start == start as u64).map_or(0, |m| m.pmd_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_private_writable_mapping_of_the_file_is_measured() {
        let maps = "\
7eb62e400000-7eb62e401000 r--p 00000000 fe:00 11190275                   /c/a b.cwasm
7eb62eb43000-7eb65bf53000 r--p 00743000 fe:00 11190275                   /c/a b.cwasm
7eb6700fb000-7eb69d220000 rw-p 008ee000 fe:00 11190275                   /c/a b.cwasm
7eb6800fb000-7eb6800fc000 rw-p 00001000 fe:00 11190275                   /c/a b.cwasm
7eb6900fb000-7eb69d220000 rw-s 00000000 fe:00 11190275                   /c/a b.cwasm
7f07100fb000-7f073d220000 rw-p 008ee000 fe:00 11190276                   /c/other.cwasm
7ffd1c1e0000-7ffd1c201000 rw-p 00000000 00:00 0                          [stack]
";
        // 0x7eb6700fb000 - 0x8ee000 = 0x7eb66f80d000: 0xd000 past a 2 MiB boundary.
        assert_eq!(misalignment_in(maps, "/c/a b.cwasm"), Some(0xd000));
        assert_eq!(misalignment_in(maps, "/c/other.cwasm"), Some(0xd000));
        assert_eq!(misalignment_in(maps, "/c/missing.cwasm"), None);
        let aligned = "7eb6700ee000-7eb69d220000 rw-p 008ee000 fe:00 1 /c/x.cwasm\n";
        assert_eq!(misalignment_in(aligned, "/c/x.cwasm"), Some(0));
    }

    #[test]
    fn smaps_fields_go_to_the_mapping_above_them() {
        let smaps = "\
7eb6700fb000-7eb69d220000 rw-p 008ee000 fe:00 11190275                   /c/a.cwasm
Rss:              374336 kB
FilePmdMapped:     36864 kB
7eb6900fb000-7eb69d220000 r--p 00000000 fe:00 11190275                   /c/a.cwasm
FilePmdMapped:      2048 kB
7f07100fb000-7f073d220000 rw-p 008ee000 fe:00 11190275                   /c/a.cwasm
Rss:              153536 kB
FilePmdMapped:     32768 kB
VmFlags: rd wr mr mw me ac sd
";
        let images: Vec<u64> = images_of(smaps, "/c/a.cwasm").map(|m| m.pmd_bytes).collect();
        assert_eq!(images, [36864 << 10, 32768 << 10], "the read-only mapping is not an image");
        assert_eq!(mappings(smaps)[1].pmd_bytes, 2048 << 10);
    }

    #[test]
    fn a_file_in_small_folios_is_read_back_in_huge_ones() {
        // Needs transparent huge pages and a file system with large folios
        // (ext4 from Linux 6.16 on, as on this project's machines).
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.cwasm");
        std::fs::write(&path, vec![7u8; 8 << 20]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        // Written pages are clean now; drop them, then read them back by
        // plain reads, which leave small folios.
        use std::os::fd::AsRawFd;
        assert_eq!(unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) }, 0);
        assert_eq!(std::fs::read(&path).unwrap().len(), 8 << 20);
        let folios = huge_page_cache(&path).unwrap();
        assert_eq!(folios.bytes, 8 << 20);
        if thp.contains("[never]") || !large_folio_fs(dir.path()) {
            eprintln!("no large folios for {} here ({folios:?}): nothing to check", path.display());
            return;
        }
        assert_eq!(folios.huge_after, 8 << 20, "{folios:?}");
        // A second call finds it so and does nothing.
        let again = huge_page_cache(&path).unwrap();
        assert_eq!((again.huge_before, again.huge_after), (8 << 20, 8 << 20));
    }

    /// ext4 or XFS on Linux 6.16 or later: page-cache folios up to 2 MiB.
    fn large_folio_fs(dir: &Path) -> bool {
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C string and a zeroed out-parameter of the right type.
        let ok = unsafe { libc::statfs(c.as_ptr(), &mut fs) } == 0;
        ok && crate::runtime::linux_at_least(6, 16) && matches!(fs.f_type as i64, 0xEF53 | 0x5846_5342)
    }

    #[test]
    fn the_marker_moves_the_image_start_down_by_the_misalignment() {
        let shape = MemoryShape { accessor: "m".into(), len: 800 << 20, image_start: Some(0x2fb000) };
        assert_eq!(marker_address(&shape, 0xd000), Some(0x2ee000));
        assert_eq!(marker_address(&shape, 0x1ff000), Some(0xfc000));
        // Below address 0, or onto the null page: no marker.
        let low = MemoryShape { image_start: Some(0xfb000), ..shape.clone() };
        assert_eq!(marker_address(&low, 0x100000), None);
        assert_eq!(marker_address(&low, 0xfb000), None);
        assert_eq!(marker_address(&MemoryShape { image_start: None, ..shape }, 0x1000), None);
    }
}
